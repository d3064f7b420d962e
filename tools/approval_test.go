package tools

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func TestApprovalTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a, err := newApprovals(clock)
	if err != nil {
		t.Fatal(err)
	}
	pay1, pay2 := [32]byte{1}, [32]byte{2}

	tok, err := a.issue(pay1)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := a.redeem(tok); err != nil || b != pay1 {
		t.Fatalf("valid token: %x, %v", b, err)
	}
	if _, err := a.redeem(tok); !errors.Is(err, errStateReplayed) {
		t.Errorf("replay: %v", err)
	}
	tok2, _ := a.issue(pay2)
	if b, _ := a.redeem(tok2); b != pay2 {
		t.Errorf("token for payment 2 redeemed as %x", b)
	}

	if _, err := a.redeem(""); !errors.Is(err, errStateMissing) {
		t.Errorf("missing: %v", err)
	}
	other, _ := newApprovals(clock)
	tok3, _ := other.issue(pay1)
	if _, err := a.redeem(tok3); !errors.Is(err, errStateForged) {
		t.Errorf("another server's token: %v", err)
	}
	tok4, _ := a.issue(pay1)
	raw, _ := base64.RawURLEncoding.DecodeString(tok4)
	raw[30] ^= 1 // flip a bit of the binding
	if _, err := a.redeem(base64.RawURLEncoding.EncodeToString(raw)); !errors.Is(err, errStateForged) {
		t.Errorf("tampered token: %v", err)
	}
	for _, junk := range []string{"x", "!!!", base64.RawURLEncoding.EncodeToString(make([]byte, tokenLen))} {
		if _, err := a.redeem(junk); !errors.Is(err, errStateForged) {
			t.Errorf("junk %q: %v", junk, err)
		}
	}

	tok5, _ := a.issue(pay1)
	now = now.Add(approvalTTL)
	if _, err := a.redeem(tok5); !errors.Is(err, errStateExpired) {
		t.Errorf("expired: %v", err)
	}
}

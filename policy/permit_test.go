package policy

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/x402"
)

// reserved records a in a fresh ledger, as the paying flow does before it
// asks for a permit, and returns the ledger's proof. An authorization the
// ledger cannot record (a test of a malformed one) gets the zero
// reservation.
func reserved(t testing.TB, a x402.Authorization) ledger.Reservation {
	t.Helper()
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if a.Value == nil || a.ValidBefore == nil || a.Value.Sign() <= 0 {
		return ledger.Reservation{}
	}
	rec, err := l.Reserve(context.Background(), ledger.Record{
		URL: "https://api.example.com/x", Host: "api.example.com", Network: usdc.Network, Asset: usdc.Address,
		Token: usdc.Symbol, Decimals: usdc.Decimals, Amount: a.Value, PayTo: a.To, Payer: a.From,
		Nonce: a.Nonce, ValidBefore: a.ValidBefore.Int64(),
	}, nil)
	if err != nil {
		return ledger.Reservation{}
	}
	return rec.Reservation()
}

// approve asks p for a permit for a, reserved first.
func approve(t testing.TB, p Policy, r Request, a x402.Authorization) (*Permit, error) {
	t.Helper()
	return p.Approve(r, a, reserved(t, a), now)
}

func TestPermitIsSingleUseAndUnforgeable(t *testing.T) {
	a, err := approve(t, Default(), request(1000), auth(1000, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the permit is the same permit: consuming one consumes both.
	copied := *a
	if err := a.Consume(); err != nil {
		t.Fatalf("first consume: %v", err)
	}
	if err := a.Consume(); !errors.Is(err, ErrPermitUsed) {
		t.Errorf("second consume: %v", err)
	}
	if err := copied.Consume(); !errors.Is(err, ErrPermitUsed) {
		t.Errorf("a copy made before use consumed again: %v", err)
	}
	if err := (&Permit{}).Consume(); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("zero permit: %v", err)
	}
	var nilPermit *Permit
	if err := nilPermit.Consume(); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("nil permit: %v", err)
	}
	// The permit holds its own copy: changing the caller's numbers later
	// does not change what gets signed.
	au := auth(1000, time.Minute)
	b, err := approve(t, Default(), request(1000), au)
	if err != nil {
		t.Fatal(err)
	}
	au.Value.SetInt64(999999)
	if b.Authorization().Value.Int64() != 1000 {
		t.Error("permit shares the caller's big.Int")
	}
	if b.ReservationID() == 0 {
		t.Error("permit does not name its reservation")
	}
}

// TestPermitNeedsItsReservation: no permit without the ledger's proof that
// this very payment was reserved, and one reservation backs one permit.
func TestPermitNeedsItsReservation(t *testing.T) {
	p := Default()
	a := auth(1000, time.Minute)
	if _, err := p.Approve(request(1000), a, ledger.Reservation{}, now); !errors.Is(err, ledger.ErrNoReservation) {
		t.Errorf("no reservation: err = %v, want ledger.ErrNoReservation", err)
	}
	// A reservation of other terms proves nothing about these.
	other := auth(1000, time.Minute)
	other.Nonce = [32]byte{2}
	if _, err := p.Approve(request(1000), a, reserved(t, other), now); !errors.Is(err, ledger.ErrNoReservation) {
		t.Errorf("reservation of another nonce: err = %v", err)
	}
	cheaper := auth(999, time.Minute)
	if _, err := p.Approve(request(1000), a, reserved(t, cheaper), now); !errors.Is(err, ledger.ErrNoReservation) {
		t.Errorf("reservation of another amount: err = %v", err)
	}
	res := reserved(t, a)
	if _, err := p.Approve(request(1000), a, res, now); err != nil {
		t.Fatalf("own reservation: %v", err)
	}
	if _, err := p.Approve(request(1000), a, res, now); !errors.Is(err, ledger.ErrReservationClaimed) {
		t.Errorf("second permit from one reservation: err = %v, want ledger.ErrReservationClaimed", err)
	}
	// A policy denial leaves the reservation unclaimed.
	a2 := auth(1000, time.Minute)
	a2.Nonce = [32]byte{3}
	res2 := reserved(t, a2)
	if _, err := p.Approve(request(200000), a2, res2, now); err == nil {
		t.Fatal("a request over the cap was permitted")
	}
	if _, err := p.Approve(request(1000), a2, res2, now); err != nil {
		t.Errorf("after a denial the reservation was spent: %v", err)
	}
}

package signer

import (
	"context"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

var payee = common.HexToAddress("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")

func baseSepolia(t testing.TB) tokens.Token {
	t.Helper()
	tok, ok := tokens.Builtin().Lookup("eip155:84532", common.HexToAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e"))
	if !ok {
		t.Fatal("Base Sepolia USDC missing from the builtin registry")
	}
	return tok
}

// freshAuthorization is what the pay flow would build: 0.01 USDC, a window
// that starts in the past and ends within the default policy's maximum.
func freshAuthorization(t testing.TB, from common.Address, now time.Time) x402.Authorization {
	t.Helper()
	n, err := x402.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	return x402.Authorization{
		From:        from,
		To:          payee,
		Value:       big.NewInt(10000),
		ValidAfter:  big.NewInt(now.Unix() - 600),
		ValidBefore: big.NewInt(now.Unix() + 60),
		Nonce:       n,
	}
}

// approve gets a real permit from the policy package, the only way one
// can exist, for a payment reserved first in a real ledger, the only way a
// permit is issued.
func approve(t testing.TB, tok tokens.Token, auth x402.Authorization, now time.Time) *policy.Permit {
	t.Helper()
	a, err := policy.Default().Approve(request(tok, auth), auth, reserve(t, tok, auth), now)
	if err != nil {
		t.Fatalf("policy refused the test payment: %v", err)
	}
	return a
}

func request(tok tokens.Token, auth x402.Authorization) policy.Request {
	return policy.Request{URL: "https://api.example.com/weather", Host: "api.example.com", Token: tok,
		PayTo: auth.To, Amount: new(big.Int).Set(auth.Value)}
}

// testLedgers holds one ledger per test (or benchmark), opened on first use.
var testLedgers sync.Map

// reserve records auth in a real ledger, as the paying flow does before it
// asks the policy for a permit, and returns the ledger's proof.
func reserve(t testing.TB, tok tokens.Token, auth x402.Authorization) ledger.Reservation {
	t.Helper()
	v, ok := testLedgers.Load(t)
	if !ok {
		l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testLedgers.Delete(t); l.Close() })
		v = l
		testLedgers.Store(t, l)
	}
	rec, err := v.(*ledger.Ledger).Reserve(context.Background(), ledger.Record{URL: "https://api.example.com/weather",
		Host: "api.example.com", Network: tok.Network, Asset: tok.Address, Token: tok.Symbol, Decimals: tok.Decimals,
		Amount: auth.Value, PayTo: auth.To, Payer: auth.From, Nonce: auth.Nonce,
		ValidBefore: auth.ValidBefore.Int64()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Reservation()
}

func TestSignRefusesWithoutPermit(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := New(k)
	for name, a := range map[string]*policy.Permit{
		"nil":        nil,
		"zero value": {},
	} {
		t.Run(name, func(t *testing.T) {
			sig, err := s.Sign(a)
			if !errors.Is(err, policy.ErrNotPermitted) {
				t.Fatalf("err = %v, want policy.ErrNotPermitted", err)
			}
			if sig != nil {
				t.Fatal("returned a signature")
			}
			if !strings.HasPrefix(err.Error(), "signer: ") {
				t.Fatalf("message %q lacks the signer prefix", err)
			}
		})
	}
}

func TestSignZeroSigner(t *testing.T) {
	var s *Signer
	if _, err := s.Sign(&policy.Permit{}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("nil Signer: err = %v, want ErrNoKey", err)
	}
	if _, err := new(Signer).Sign(&policy.Permit{}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("zero Signer: err = %v, want ErrNoKey", err)
	}
	for _, k := range []*Key{nil, {}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("New accepted a key-less Key")
				}
			}()
			New(k)
		}()
	}
}

func TestSignWithPolicyPermit(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := New(k)
	if s.Address() != k.Address() {
		t.Fatal("signer address differs from key address")
	}
	now := time.Now()
	tok := baseSepolia(t)
	auth := freshAuthorization(t, s.Address(), now)
	a := approve(t, tok, auth, now)

	sig, err := s.Sign(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		t.Fatalf("signature shape: len %d, v %d", len(sig), sig[len(sig)-1])
	}
	// Recover against what the policy approved, read back from the
	// permit, not the local copy: the signer must have signed exactly that.
	who, err := Recover(a.Token(), a.Authorization(), sig)
	if err != nil {
		t.Fatal(err)
	}
	if who != s.Address() {
		t.Fatalf("signature recovers to %s, want %s", who.Hex(), s.Address().Hex())
	}
	// Each permit is good for one signature, and so is every copy of it.
	if _, err := s.Sign(a); !errors.Is(err, policy.ErrPermitUsed) {
		t.Fatalf("second Sign: err = %v, want policy.ErrPermitUsed", err)
	}
}

// TestCopiedPermitSignsOnce: a permit copied before it is used is the same
// permit; the two copies give one signature between them.
func TestCopiedPermitSignsOnce(t *testing.T) {
	k, _ := GenerateKey()
	s := New(k)
	now := time.Now()
	a := approve(t, baseSepolia(t), freshAuthorization(t, s.Address(), now), now)
	copied := *a
	if _, err := s.Sign(&copied); err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(a)
	if !errors.Is(err, policy.ErrPermitUsed) || sig != nil {
		t.Fatalf("the original after its copy signed: %x, %v", sig, err)
	}
}

func TestSignRefusesOtherPayer(t *testing.T) {
	k, _ := GenerateKey()
	other, _ := GenerateKey()
	s := New(k)
	now := time.Now()
	tok := baseSepolia(t)
	a := approve(t, tok, freshAuthorization(t, other.Address(), now), now)

	_, err := s.Sign(a)
	if !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("err = %v, want ErrWrongSigner", err)
	}
	if !strings.Contains(err.Error(), other.Address().Hex()) || !strings.Contains(err.Error(), k.Address().Hex()) {
		t.Fatalf("message should name both addresses: %q", err)
	}
	// A refused permit is spent: retrying it cannot produce a signature.
	if _, err := s.Sign(a); !errors.Is(err, policy.ErrPermitUsed) {
		t.Fatalf("retry: err = %v, want policy.ErrPermitUsed", err)
	}
}

// TestSignPathRefusals covers the checks that run after the permit gate
// (the policy refuses most of these earlier; the signer must not rely on
// that).
func TestSignPathRefusals(t *testing.T) {
	k, _ := GenerateKey()
	s := New(k)
	tok := baseSepolia(t)
	good := freshAuthorization(t, s.Address(), time.Now())
	if _, err := s.sign(tok, good); err != nil {
		t.Fatalf("good authorization refused: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*x402.Authorization, *tokens.Token)
		want   error
	}{
		{"other from", func(a *x402.Authorization, _ *tokens.Token) { a.From = payee }, ErrWrongSigner},
		{"zero to", func(a *x402.Authorization, _ *tokens.Token) { a.To = common.Address{} }, ErrBadAuthorization},
		{"zero nonce", func(a *x402.Authorization, _ *tokens.Token) { a.Nonce = [32]byte{} }, ErrBadAuthorization},
		{"nil value", func(a *x402.Authorization, _ *tokens.Token) { a.Value = nil }, ErrBadAuthorization},
		{"nil validAfter", func(a *x402.Authorization, _ *tokens.Token) { a.ValidAfter = nil }, ErrBadAuthorization},
		{"nil validBefore", func(a *x402.Authorization, _ *tokens.Token) { a.ValidBefore = nil }, ErrBadAuthorization},
		{"validBefore == validAfter", func(a *x402.Authorization, _ *tokens.Token) { a.ValidBefore = new(big.Int).Set(a.ValidAfter) }, ErrBadAuthorization},
		{"validBefore < validAfter", func(a *x402.Authorization, _ *tokens.Token) {
			a.ValidBefore = new(big.Int).Sub(a.ValidAfter, big.NewInt(1))
		}, ErrBadAuthorization},
		{"negative value", func(a *x402.Authorization, _ *tokens.Token) { a.Value = big.NewInt(-5) }, ErrBadAuthorization},
		{"empty name", func(_ *x402.Authorization, t *tokens.Token) { t.Name = "" }, ErrBadDomain},
		{"empty version", func(_ *x402.Authorization, t *tokens.Token) { t.Version = "" }, ErrBadDomain},
		{"nil chain id", func(_ *x402.Authorization, t *tokens.Token) { t.ChainID = nil }, ErrBadDomain},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, tk := good, tok
			c.mutate(&a, &tk)
			sig, err := s.sign(tk, a)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if sig != nil {
				t.Fatal("returned a signature")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "signer: ") || strings.HasSuffix(msg, ".") {
				t.Fatalf("message style: %q", msg)
			}
		})
	}
}

// The signature must come out the same however many goroutines share a
// Signer (run with -race).
func TestSignConcurrent(t *testing.T) {
	v := loadVectors(t)
	sv := v.Signing[0]
	s := New(vectorKey(t, sv.PrivateKey))
	tok := v.Domains["base-sepolia-usdc"].token()
	a := sv.Authorization.auth(t)
	want := string(sv.Results["base-sepolia-usdc"].Signature)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				sig, err := s.sign(tok, a)
				if err == nil && string(sig) != want {
					err = errors.New("signature differs under concurrency")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

package ledger

import (
	"context"
	"errors"
	"math/big"
	"testing"
)

// TestReservationProvesOneReservedPayment: only Reserve makes a proof; it
// covers exactly the reserved terms and is claimed once, copies included.
func TestReservationProvesOneReservedPayment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		r := mustReserve(t, l, rec("api.example.com", 5_000_000))
		res, nonce := r.Reservation(), r.Nonce
		if res.ID() != r.ID || res.ID() == 0 {
			t.Fatalf("reservation id %d, record %d", res.ID(), r.ID)
		}
		for name, claim := range map[string]func() error{
			"other payer":  func() error { return res.Claim(testPayTo, testPayTo, r.Amount, nonce) },
			"other payee":  func() error { return res.Claim(testPayer, testPayer, r.Amount, nonce) },
			"other amount": func() error { return res.Claim(testPayer, testPayTo, new(big.Int).Add(r.Amount, big.NewInt(1)), nonce) },
			"nil amount":   func() error { return res.Claim(testPayer, testPayTo, nil, nonce) },
			"other nonce":  func() error { return res.Claim(testPayer, testPayTo, r.Amount, [32]byte{9}) },
		} {
			if err := claim(); !errors.Is(err, ErrNoReservation) {
				t.Errorf("%s: err = %v, want ErrNoReservation", name, err)
			}
		}
		copied := res
		if err := res.Claim(testPayer, testPayTo, r.Amount, nonce); err != nil {
			t.Fatalf("claim of the reserved terms: %v", err)
		}
		if err := copied.Claim(testPayer, testPayTo, r.Amount, nonce); !errors.Is(err, ErrReservationClaimed) {
			t.Errorf("a copy claimed again: err = %v", err)
		}
		// What is read back proves nothing: it may be a record whose signature
		// was made long ago.
		got, err := l.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := got.Reservation().Claim(testPayer, testPayTo, r.Amount, nonce); !errors.Is(err, ErrNoReservation) {
			t.Errorf("a record read back: err = %v", err)
		}
		if err := (Reservation{}).Claim(testPayer, testPayTo, r.Amount, nonce); !errors.Is(err, ErrNoReservation) {
			t.Errorf("zero reservation: err = %v", err)
		}
		// A refused reservation makes no proof.
		over := rec("api.example.com", 5_000_000)
		if out, err := l.Reserve(context.Background(), over, []Limit{{Name: "tiny", MaxUSDNano: 1}}); err == nil || out.Reservation().ID() != 0 {
			t.Errorf("a refused reservation: %v, %d", err, out.Reservation().ID())
		}
	})
}

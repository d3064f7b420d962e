package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// approvalFor asks for r's terms, bound to binding (a name hashed, so tests
// read as which terms they mean).
func approvalFor(r Record, binding string) Approval {
	return Approval{
		Binding:    sha256.Sum256([]byte(binding)),
		RequestKey: sha256.Sum256([]byte("GET " + r.URL)),
		Method:     "GET", URL: r.URL, Host: r.Host,
		Network: r.Network, Asset: r.Asset, Token: r.Token, Decimals: r.Decimals,
		Amount: new(big.Int).Set(r.Amount), USDNano: r.USDNano, PayTo: r.PayTo,
		Requester: "claude-ai (pid 4242)",
	}
}

func mustRequest(t testing.TB, l *Ledger, a Approval, ttl time.Duration) Approval {
	t.Helper()
	got, err := l.RequestApproval(context.Background(), a, ttl)
	if err != nil {
		t.Fatalf("RequestApproval: %v", err)
	}
	return got
}

func mustDecide(t testing.TB, l *Ledger, id string, approve bool) Approval {
	t.Helper()
	got, err := l.Decide(context.Background(), id, approve)
	if err != nil {
		t.Fatalf("Decide(%s, %v): %v", id, approve, err)
	}
	return got
}

func mustApproval(t testing.TB, l *Ledger, id string) Approval {
	t.Helper()
	a, err := l.ApprovalByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// paying returns r (with a fresh nonce) set to use approval a.
func paying(r Record, a Approval) Record {
	r.Nonce = rec(r.Host, 1).Nonce
	r.Approval = &ApprovalUse{ID: a.ID, Binding: a.Binding}
	return r
}

// unusable asserts err is an *ApprovalUnusableError with the given status.
func unusable(t testing.TB, err error, status string) *ApprovalUnusableError {
	t.Helper()
	var ue *ApprovalUnusableError
	if !errors.Is(err, ErrApprovalUnusable) || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want ErrApprovalUnusable", err)
	}
	if ue.Status != status {
		t.Fatalf("unusable status %q, want %q (%v)", ue.Status, status, err)
	}
	return ue
}

func countRecords(t testing.TB, l *Ledger) int {
	t.Helper()
	rs, err := l.Recent(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(rs)
}

// The whole life of an approval: requested, listed, approved, used by one
// payment and refused to a second.
func TestApprovalPaysOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now})
		ctx := context.Background()
		r := rec("api.example.com", 250_000_000)

		a := mustRequest(t, l, approvalFor(r, "terms"), 15*time.Minute)
		if !reApprovalID().MatchString(a.ID) || a.State != ApprovalPending || !a.Created.Equal(clk.Now()) ||
			!a.Expires.Equal(clk.Now().Add(15*time.Minute)) || !a.Decided.IsZero() || a.RecordID != 0 {
			t.Fatalf("requested: %+v", a)
		}
		pending, err := l.Approvals(ctx, false, 10)
		if err != nil || len(pending) != 1 || pending[0].ID != a.ID {
			t.Fatalf("pending list: %v %+v", err, pending)
		}
		back := mustApproval(t, l, strings.ToUpper(a.ID)+" ") // as a human might type it
		if back.Amount.Cmp(r.Amount) != 0 || back.Binding != a.Binding || back.RequestKey != a.RequestKey ||
			back.URL != r.URL || back.Host != r.Host || back.PayTo != r.PayTo || back.Requester != a.Requester ||
			back.Method != "GET" || back.Token != "USDC" || back.Decimals != 6 || back.USDNano != r.USDNano {
			t.Fatalf("read back\n%+v\nwant\n%+v", back, a)
		}
		if latest, ok, err := l.LatestApproval(ctx, a.RequestKey); err != nil || !ok || latest.ID != a.ID {
			t.Fatalf("LatestApproval: %v %v %+v", err, ok, latest)
		}

		// Not approved yet: it cannot pay.
		_, err = l.Reserve(ctx, paying(r, a), nil)
		unusable(t, err, "pending")

		clk.Advance(time.Minute)
		d := mustDecide(t, l, a.ID, true)
		if d.State != ApprovalApproved || !d.Decided.Equal(clk.Now()) {
			t.Fatalf("decided: %+v", d)
		}
		if pending, _ := l.Approvals(ctx, false, 10); len(pending) != 0 {
			t.Fatalf("an approved approval is still listed as pending: %+v", pending)
		}

		paid, err := l.Reserve(ctx, paying(r, a), nil)
		if err != nil {
			t.Fatalf("Reserve with approval: %v", err)
		}
		used := mustApproval(t, l, a.ID)
		if used.State != ApprovalUsed || used.RecordID != paid.ID || used.Status(clk.Now()) != "used" {
			t.Fatalf("after paying: %+v (record %d)", used, paid.ID)
		}

		_, err = l.Reserve(ctx, paying(r, a), nil)
		if ue := unusable(t, err, "used"); ue.RecordID != paid.ID {
			t.Fatalf("second use: %+v", ue)
		}
		if n := countRecords(t, l); n != 1 {
			t.Fatalf("%d records after a refused second use, want 1", n)
		}
		// A used approval stays used, whatever the clock says.
		clk.Advance(time.Hour)
		if s := mustApproval(t, l, a.ID).Status(clk.Now()); s != "used" {
			t.Fatalf("status %q after expiry, want used", s)
		}
		all, err := l.Approvals(ctx, true, 10)
		if err != nil || len(all) != 1 || all[0].State != ApprovalUsed {
			t.Fatalf("all: %v %+v", err, all)
		}
	})
}

func TestDeniedApprovalCannotPay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		ctx := context.Background()
		r := rec("deny.example", 10)
		a := mustRequest(t, l, approvalFor(r, "deny"), time.Hour)
		if d := mustDecide(t, l, a.ID, false); d.State != ApprovalDenied || d.Decided.IsZero() {
			t.Fatalf("denied: %+v", d)
		}
		_, err := l.Reserve(ctx, paying(r, a), nil)
		unusable(t, err, "denied")
		if n := countRecords(t, l); n != 0 {
			t.Fatalf("%d records, want 0", n)
		}
		for _, approve := range []bool{true, false} {
			_, err := l.Decide(ctx, a.ID, approve)
			var se *ApprovalStateError
			if !errors.As(err, &se) || se.Status != "denied" || !strings.Contains(err.Error(), "already denied") {
				t.Fatalf("deciding a denied approval: %v", err)
			}
		}
		if s := mustApproval(t, l, a.ID).State; s != ApprovalDenied {
			t.Fatalf("state %s after refused decisions, want denied", s)
		}
	})
}

func TestExpiredApproval(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now})
		ctx := context.Background()
		r := rec("exp.example", 10)

		// Pending past its expiry: cannot be decided, is not listed as pending.
		a := mustRequest(t, l, approvalFor(r, "late"), 10*time.Minute)
		clk.Advance(10 * time.Minute) // exactly at Expires: expired
		_, err := l.Decide(ctx, a.ID, true)
		var se *ApprovalStateError
		if !errors.As(err, &se) || se.Status != "expired" || se.To != ApprovalApproved {
			t.Fatalf("deciding an expired approval: %v", err)
		}
		if got := mustApproval(t, l, a.ID); got.State != ApprovalPending || got.Status(clk.Now()) != "expired" || !got.Expired(clk.Now()) {
			t.Fatalf("expired approval changed: %+v", got)
		}
		if pending, _ := l.Approvals(ctx, false, 10); len(pending) != 0 {
			t.Fatalf("expired approval listed as pending: %+v", pending)
		}
		if all, _ := l.Approvals(ctx, true, 10); len(all) != 1 || all[0].Status(clk.Now()) != "expired" {
			t.Fatalf("all: %+v", all)
		}

		// Approved, then past its expiry: cannot pay.
		b := mustRequest(t, l, approvalFor(r, "slow agent"), 10*time.Minute)
		mustDecide(t, l, b.ID, true)
		clk.Advance(10*time.Minute - 1)
		if mustApproval(t, l, b.ID).Expired(clk.Now()) {
			t.Fatal("expired 1ns early")
		}
		clk.Advance(1)
		_, err = l.Reserve(ctx, paying(r, b), nil)
		if ue := unusable(t, err, "expired"); !strings.Contains(ue.Error(), "expired at") {
			t.Fatalf("message: %v", ue)
		}
		if n := countRecords(t, l); n != 0 {
			t.Fatalf("%d records, want 0", n)
		}
	})
}

// An approval pays only the terms it was granted for.
func TestApprovalBoundToTerms(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		ctx := context.Background()
		r := rec("bound.example", 100_000_000)
		a := mustRequest(t, l, approvalFor(r, "0.10 to payee"), time.Hour)
		mustDecide(t, l, a.ID, true)

		wrongBinding := paying(r, a)
		wrongBinding.Approval.Binding = sha256.Sum256([]byte("5.00 to payee"))
		_, err := l.Reserve(ctx, wrongBinding, nil)
		if ue := unusable(t, err, "approved"); !strings.Contains(ue.Reason, "other payment terms") {
			t.Fatalf("wrong binding: %v", err)
		}
		// Right binding, other money terms: pay's hash and the record disagree.
		for name, change := range map[string]func(*Record){
			"amount":  func(r *Record) { r.Amount = new(big.Int).Add(r.Amount, big.NewInt(1)) },
			"payee":   func(r *Record) { r.PayTo = common.HexToAddress("0x9999999999999999999999999999999999999999") },
			"host":    func(r *Record) { r.Host = "evil.example" },
			"network": func(r *Record) { r.Network = "eip155:1" },
			"asset":   func(r *Record) { r.Asset = common.HexToAddress("0x1111111111111111111111111111111111111111") },
		} {
			other := paying(r, a)
			change(&other)
			_, err := l.Reserve(ctx, other, nil)
			if !errors.Is(err, ErrApprovalUnusable) {
				t.Errorf("%s changed: %v, want ErrApprovalUnusable", name, err)
			}
		}
		if n := countRecords(t, l); n != 0 {
			t.Fatalf("%d records, want 0", n)
		}
		same := paying(r, a)
		if _, err := l.Reserve(ctx, same, nil); err != nil {
			t.Fatalf("right terms after the refusals: %v", err)
		}
	})
}

// A budget refusal records nothing and leaves the approval usable.
func TestBudgetRefusalKeepsApproval(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		ctx := context.Background()
		r := rec("budget.example", 500_000_000)
		a := mustRequest(t, l, approvalFor(r, "budget"), time.Hour)
		mustDecide(t, l, a.ID, true)

		tight := Limit{Name: "daily budget", Window: 24 * time.Hour, MaxUSDNano: 100_000_000}
		_, err := l.Reserve(ctx, paying(r, a), []Limit{tight})
		var be *BudgetError
		if !errors.As(err, &be) {
			t.Fatalf("over budget: %v, want BudgetError", err)
		}
		if got := mustApproval(t, l, a.ID); got.State != ApprovalApproved || got.RecordID != 0 {
			t.Fatalf("after a budget refusal: %+v", got)
		}
		tight.MaxUSDNano = 1_000_000_000
		paid, err := l.Reserve(ctx, paying(r, a), []Limit{tight})
		if err != nil {
			t.Fatal(err)
		}
		if got := mustApproval(t, l, a.ID); got.State != ApprovalUsed || got.RecordID != paid.ID {
			t.Fatalf("after paying: %+v", got)
		}
	})
}

// An agent repeating a call before the human answers finds the same
// pending approval rather than piling up new ones.
func TestRequestApprovalDedupes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		l := bk.openNew(t, Options{Now: clk.Now})
		ctx := context.Background()
		r := rec("dup.example", 10)
		a := mustRequest(t, l, approvalFor(r, "same"), 10*time.Minute)
		clk.Advance(time.Minute)
		again := approvalFor(r, "same")
		again.Requester = "another window"
		if b := mustRequest(t, l, again, time.Hour); b.ID != a.ID || !b.Expires.Equal(a.Expires) || b.Requester != a.Requester {
			t.Fatalf("repeat request: %+v, want the first %+v", b, a)
		}
		if c := mustRequest(t, l, approvalFor(r, "other terms"), time.Hour); c.ID == a.ID {
			t.Fatal("other terms got the same approval")
		}
		// Once the first has expired, or been decided, a repeat is a new request.
		clk.Advance(9 * time.Minute)
		d := mustRequest(t, l, approvalFor(r, "same"), 10*time.Minute)
		if d.ID == a.ID {
			t.Fatal("an expired approval was returned for a new request")
		}
		mustDecide(t, l, d.ID, false)
		if e := mustRequest(t, l, approvalFor(r, "same"), 10*time.Minute); e.ID == d.ID || e.State != ApprovalPending {
			t.Fatalf("after a denial: %+v", e)
		}
		if all, _ := l.Approvals(ctx, true, 0); len(all) != 4 {
			t.Fatalf("%d approvals, want 4", len(all))
		}
		// LatestApproval follows the request, whatever the terms or state.
		latest, ok, err := l.LatestApproval(ctx, a.RequestKey)
		if err != nil || !ok || latest.State != ApprovalPending || latest.ID == d.ID {
			t.Fatalf("latest: %v %v %+v", err, ok, latest)
		}
		if _, ok, err := l.LatestApproval(ctx, sha256.Sum256([]byte("never asked"))); ok || err != nil {
			t.Fatalf("unknown request key: %v %v", ok, err)
		}
	})
}

func TestApprovalNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		ctx := context.Background()
		for _, id := range []string{"ap-aaaaaaaa", "nonsense", "", "ap-\x1b[31m"} {
			if _, err := l.ApprovalByID(ctx, id); !errors.Is(err, ErrApprovalNotFound) {
				t.Errorf("ApprovalByID(%q): %v", id, err)
			}
			if _, err := l.Decide(ctx, id, true); !errors.Is(err, ErrApprovalNotFound) || strings.Contains(err.Error(), "\x1b") {
				t.Errorf("Decide(%q): %v", id, err)
			}
		}
		r := rec("nf.example", 10)
		r.Approval = &ApprovalUse{ID: "ap-aaaaaaaa", Binding: sha256.Sum256([]byte("x"))}
		_, err := l.Reserve(ctx, r, nil)
		unusable(t, err, "")
		r.Approval.ID = "not-an-id"
		if _, err := l.Reserve(ctx, r, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("malformed approval id: %v, want ErrInvalid", err)
		}
		r.Approval = &ApprovalUse{ID: "ap-aaaaaaaa"}
		if _, err := l.Reserve(ctx, r, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("zero binding: %v, want ErrInvalid", err)
		}
	})
}

func TestRequestApprovalValidates(t *testing.T) {
	l := openTest(t, Options{})
	ctx := context.Background()
	base := approvalFor(rec("v.example", 10), "v")
	for name, mutate := range map[string]func(*Approval){
		"zero binding": func(a *Approval) { a.Binding = [32]byte{} },
		"zero key":     func(a *Approval) { a.RequestKey = [32]byte{} },
		"no method":    func(a *Approval) { a.Method = "" },
		"method space": func(a *Approval) { a.Method = "GET /" },
		"empty url":    func(a *Approval) { a.URL = "" },
		"long url":     func(a *Approval) { a.URL = "https://v.example/" + strings.Repeat("a", maxURL) },
		"url newline":  func(a *Approval) { a.URL = "https://v.example/\nfake line" },
		"url bidi":     func(a *Approval) { a.URL = "https://v.example/\u202egnp.exe" },
		"host case":    func(a *Approval) { a.Host = "V.example" },
		"network":      func(a *Approval) { a.Network = "base" },
		"asset":        func(a *Approval) { a.Asset = common.Address{} },
		"token":        func(a *Approval) { a.Token = strings.Repeat("X", maxToken+1) },
		"nil amount":   func(a *Approval) { a.Amount = nil },
		"zero amount":  func(a *Approval) { a.Amount = big.NewInt(0) },
		"huge amount":  func(a *Approval) { a.Amount = new(big.Int).Lsh(big.NewInt(1), 256) },
		"negative usd": func(a *Approval) { a.USDNano = -1 },
		"payTo":        func(a *Approval) { a.PayTo = common.Address{} },
		"token zwsp":   func(a *Approval) { a.Token = "US\u200bDC" },
	} {
		a := base
		a.Amount = new(big.Int).Set(base.Amount)
		mutate(&a)
		if _, err := l.RequestApproval(ctx, a, time.Hour); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Second, maxApprovalTTL + 1} {
		if _, err := l.RequestApproval(ctx, base, ttl); !errors.Is(err, ErrInvalid) {
			t.Errorf("ttl %v: %v, want ErrInvalid", ttl, err)
		}
	}
	if all, _ := l.Approvals(ctx, true, 0); len(all) != 0 {
		t.Fatalf("refused requests recorded %d approvals", len(all))
	}

	// The requester is another party's text: kept, but as one clean,
	// bounded line.
	a := base
	a.Requester = "evil\n\x1b[2Jclient\u202e\u200b\xff" + strings.Repeat("é", maxRequester)
	got := mustRequest(t, l, a, time.Hour)
	if strings.ContainsAny(got.Requester, "\n\x1b\u202e\u200b") || len(got.Requester) > maxRequester ||
		!strings.HasPrefix(got.Requester, "evil  [2Jclient\ufffd") {
		t.Fatalf("requester stored as %q", got.Requester)
	}
	if back := mustApproval(t, l, got.ID); back.Requester != got.Requester {
		t.Fatalf("requester read back %q, returned %q", back.Requester, got.Requester)
	}
}

// IDs are short, typeable and distinct.
func TestApprovalIDs(t *testing.T) {
	l := openTest(t, Options{})
	seen := map[string]bool{}
	for i := range 200 {
		a := approvalFor(rec("id.example", 10), fmt.Sprintf("terms %d", i))
		got := mustRequest(t, l, a, time.Hour)
		if !reApprovalID().MatchString(got.ID) || seen[got.ID] {
			t.Fatalf("id %q (seen before: %v)", got.ID, seen[got.ID])
		}
		seen[got.ID] = true
	}
	if all, _ := l.Approvals(context.Background(), true, 50); len(all) != 50 {
		t.Fatalf("Approvals(all, 50) returned %d", len(all))
	}
}

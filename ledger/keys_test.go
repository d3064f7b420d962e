package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// The text the string-typed code stored (pay wrote common.Address.Hex and
// "0x" + hex of the nonce): known answers, not computed by keys.go.
const (
	oldAsset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" // EIP-55
	oldPayTo = "0x2222222222222222222222222222222222222222"
	oldPayer = "0xAbcDef0000000000000000000000000000001111" // EIP-55 of testPayer
)

// insertText inserts a record the way a hand, or an older x402-mcp, puts
// text in the columns, through the triggers (the sums stay right), and
// returns its id.
func insertText(t *testing.T, l *Ledger, asset, payTo, payer, nonce string) int64 {
	t.Helper()
	now := l.now().UnixNano()
	if _, err := rawExec(l, qInsert, now, now, "https://old.example/x", "old.example", "eip155:8453",
		asset, "USDC", 6, "10000", int64(10_000_000), payTo, payer, nonce,
		time.Unix(0, now).Add(time.Hour).Unix(), string(Reserved), "old-process", now); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var id int64
	if err := l.wdb.QueryRow(l.d.q(`SELECT id FROM records WHERE nonce = ?`), nonce).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// storedText reads a record's address and nonce columns as stored.
func storedText(t *testing.T, l *Ledger, id int64) [4]string {
	t.Helper()
	var s [4]string
	if err := l.wdb.QueryRow(l.d.q(`SELECT asset, pay_to, payer, nonce FROM records WHERE id = ?`), id).
		Scan(&s[0], &s[1], &s[2], &s[3]); err != nil {
		t.Fatal(err)
	}
	return s
}

// A record keeps the stored text it had when its fields were strings, and
// a row written in that text reads back as the same typed values, its
// (payer, nonce) still unique whatever the case of its hex.
func TestStoredTextUnchanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		l := bk.openNew(t, Options{})

		r := mustReserve(t, l, rec("new.example", 1000))
		n := nonceSeq.Load()
		wantNonce := fmt.Sprintf("0xfeed%060x", n) // the old helper's nonce text
		if got, want := storedText(t, l, r.ID), [4]string{oldAsset, oldPayTo, oldPayer, wantNonce}; got != want {
			t.Fatalf("stored %q, want %q", got, want)
		}

		// An old row, as the string-typed code wrote it.
		oldNonce := fmt.Sprintf("0xfeed%060x", nonceSeq.Add(1))
		id := insertText(t, l, oldAsset, oldPayTo, oldPayer, oldNonce)
		got, err := l.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get of an old row: %v", err)
		}
		if got.Asset != testAsset || got.PayTo != testPayTo || got.Payer != testPayer || got.Nonce != testNonce(nonceSeq.Load()) {
			t.Fatalf("old row read back as %s %s %s %x", got.Asset, got.PayTo, got.Payer, got.Nonce)
		}
		dup := rec("new.example", 1000)
		dup.Nonce = got.Nonce
		if _, err := l.Reserve(ctx, dup, nil); !errors.Is(err, ErrDuplicateNonce) {
			t.Fatalf("typed duplicate of an old row: %v, want ErrDuplicateNonce", err)
		}

		// Another case of the same hex: the same (payer, nonce) all the same.
		caseNonce := fmt.Sprintf("0xFEED%060X", nonceSeq.Add(1))
		id = insertText(t, l, strings.ToLower(oldAsset), oldPayTo, strings.ToLower(oldPayer), caseNonce)
		if got, err = l.Get(ctx, id); err != nil || got.Payer != testPayer || got.Asset != testAsset || got.Nonce != testNonce(nonceSeq.Load()) {
			t.Fatalf("row in other case: %v, %s %s %x", err, got.Payer, got.Asset, got.Nonce)
		}
		dup.Nonce = got.Nonce
		if _, err := l.Reserve(ctx, dup, nil); !errors.Is(err, ErrDuplicateNonce) {
			t.Fatalf("typed duplicate of a row in other case: %v, want ErrDuplicateNonce", err)
		}
		// The same nonce under another payer is another authorization.
		dup.Payer = common.HexToAddress("0x3333333333333333333333333333333333333333")
		mustReserve(t, l, dup)

		// What survives a copy is the text too.
		dst := bk.openNew(t, Options{})
		if _, err := CopyTo(ctx, l, dst); err != nil {
			t.Fatal(err)
		}
		if got, want := storedText(t, dst, 1), [4]string{oldAsset, oldPayTo, oldPayer, wantNonce}; got != want {
			t.Fatalf("copied %q, want %q", got, want)
		}
	})
}

// An approval keeps its text too, and one written in other case still
// pays the record with its terms.
func TestApprovalStoredText(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		l := bk.openNew(t, Options{})
		r := rec("ap.example", 1000)
		a, err := l.RequestApproval(ctx, approvalFor(r, "1.00 to payee"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var asset, payTo string
		if err := l.wdb.QueryRow(l.d.q(`SELECT asset, pay_to FROM approvals WHERE id = ?`), a.ID).Scan(&asset, &payTo); err != nil {
			t.Fatal(err)
		}
		if asset != oldAsset || payTo != oldPayTo {
			t.Fatalf("stored %s %s, want %s %s", asset, payTo, oldAsset, oldPayTo)
		}
		// As a hand would write it: lower-case.
		if _, err := rawExec(l, qApprovalInsert, "ap-aaaaaaaa", fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2),
			"GET", r.URL, r.Host, r.Network, strings.ToLower(oldAsset), "USDC", 6, r.Amount.String(), r.USDNano,
			oldPayTo, "", l.now().UnixNano(), l.now().Add(time.Hour).UnixNano()); err != nil {
			t.Fatal(err)
		}
		got, err := l.Decide(ctx, "ap-aaaaaaaa", true)
		if err != nil {
			t.Fatal(err)
		}
		if got.Asset != testAsset || got.PayTo != testPayTo {
			t.Fatalf("read back %s %s", got.Asset, got.PayTo)
		}
		r.Approval = &ApprovalUse{ID: got.ID, Binding: got.Binding}
		if _, err := l.Reserve(ctx, r, nil); err != nil {
			t.Fatalf("paying with an approval stored in lower case: %v", err)
		}
	})
}

// A stored address or nonce that does not parse is an error on every read,
// never a zero value: the ledger fails closed on a row edited by hand.
func TestMalformedStoredTextRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		ctx := context.Background()
		good := func() [4]string {
			return [4]string{oldAsset, oldPayTo, oldPayer, fmt.Sprintf("0xfeed%060x", nonceSeq.Add(1))}
		}
		for name, bad := range map[string]func(*[4]string){
			"asset short":    func(s *[4]string) { s[0] = "0x1234" },
			"asset empty":    func(s *[4]string) { s[0] = "" },
			"payTo not hex":  func(s *[4]string) { s[1] = "0xzz22222222222222222222222222222222222222" },
			"payTo no 0x":    func(s *[4]string) { s[1] = "2222222222222222222222222222222222222222" },
			"payer long":     func(s *[4]string) { s[2] = oldPayer + "00" },
			"payer spaced":   func(s *[4]string) { s[2] = " " + oldPayer },
			"nonce short":    func(s *[4]string) { s[3] = "0x01" },
			"nonce long":     func(s *[4]string) { s[3] = "0x" + strings.Repeat("0", 66) },
			"nonce not hex":  func(s *[4]string) { s[3] = "0x" + strings.Repeat("g", 64) },
			"nonce no 0x":    func(s *[4]string) { s[3] = strings.Repeat("ab", 32) },
			"nonce trailing": func(s *[4]string) { s[3] = fmt.Sprintf("0x%064x\n", 7) },
		} {
			t.Run(name, func(t *testing.T) {
				l := bk.openNew(t, Options{})
				s := good()
				bad(&s)
				id := insertText(t, l, s[0], s[1], s[2], s[3])
				if got, err := l.Get(ctx, id); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("record %d", id)) {
					t.Errorf("Get: %+v, %v; want an error naming record %d", got, err, id)
				}
				if _, err := l.Recent(ctx, 10); err == nil {
					t.Error("Recent read a malformed row")
				}
				if _, err := l.Pending(ctx); err == nil {
					t.Error("Pending read a malformed row")
				}
				if _, err := CopyTo(ctx, l, bk.openNew(t, Options{})); err == nil {
					t.Error("CopyTo copied a malformed row")
				}
			})
		}
		t.Run("approval", func(t *testing.T) {
			l := bk.openNew(t, Options{})
			r := rec("ap.example", 1000)
			if _, err := rawExec(l, qApprovalInsert, "ap-bbbbbbbb", fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2),
				"GET", r.URL, r.Host, r.Network, oldAsset, "USDC", 6, r.Amount.String(), r.USDNano,
				"0x12", "", l.now().UnixNano(), l.now().Add(time.Hour).UnixNano()); err != nil {
				t.Fatal(err)
			}
			if got, err := l.ApprovalByID(ctx, "ap-bbbbbbbb"); err == nil || !strings.Contains(err.Error(), "ap-bbbbbbbb") {
				t.Errorf("ApprovalByID: %+v, %v; want an error naming it", got, err)
			}
		})
	})
}

package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Two Ledger instances on one file, as two server processes would hold
// it, race 20 payments for one approval: exactly one pays.
func TestApprovalUsedOnceAcrossInstances(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		clk := newClock()
		path := bk.place(t)
		var ls [2]*Ledger
		for i := range ls {
			l, err := Open(path, Options{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			ls[i] = l
		}
		r := rec("race.example", 1_000_000)
		a := mustRequest(t, ls[0], approvalFor(r, "race"), time.Hour)
		mustDecide(t, ls[1], a.ID, true)

		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			won    []Record
			lost   int
			others []error
		)
		start := make(chan struct{})
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got, err := ls[i%2].Reserve(context.Background(), paying(r, a), nil)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, got)
				case errors.Is(err, ErrApprovalUnusable):
					lost++
				default:
					others = append(others, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(others) > 0 {
			t.Fatalf("unexpected errors: %v", errors.Join(others...))
		}
		if len(won) != 1 || lost != 19 {
			t.Fatalf("%d payments used the approval and %d were refused; want 1 and 19", len(won), lost)
		}
		if n := countRecords(t, ls[0]); n != 1 {
			t.Fatalf("%d records, want 1", n)
		}
		for _, l := range ls {
			if got := mustApproval(t, l, a.ID); got.State != ApprovalUsed || got.RecordID != won[0].ID {
				t.Fatalf("instance sees %+v, want used by %d", got, won[0].ID)
			}
		}
	})
}

// Humans deciding one approval at once from two instances: one decision
// holds, the other is told what happened.
func TestDecideRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		path := bk.place(t)
		var ls [2]*Ledger
		for i := range ls {
			l, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			ls[i] = l
		}
		for round := range 10 {
			a := mustRequest(t, ls[0], approvalFor(rec("decide.example", 10), fmt.Sprint("round", round)), time.Hour)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = ls[i].Decide(context.Background(), a.ID, i == 0)
				}()
			}
			wg.Wait()
			final := mustApproval(t, ls[0], a.ID).State
			winner := 1
			if final == ApprovalApproved {
				winner = 0
			}
			var se *ApprovalStateError
			if errs[winner] != nil || !errors.As(errs[1-winner], &se) || se.Status != string(final) {
				t.Fatalf("round %d: final %s, errors %v", round, final, errs)
			}
		}
	})
}

// Processes (not only instances in one process) that share a ledger file
// use one approval once between them.
func TestApprovalUsedOnceAcrossProcesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		skipWithoutProcesses(t)
		const children = 4
		path := bk.place(t)
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		a := mustRequest(t, l, approvalFor(rec("proc.example", 1_000), "procs"), time.Hour)
		mustDecide(t, l, a.ID, true)

		start := time.Now().Add(500 * time.Millisecond).UnixNano()
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			outs []string
			errs []error
		)
		for i := range children {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := helperCmd(t, "approval", envPath+"="+path, envChild+"="+strconv.Itoa(i),
					envApproval+"="+a.ID, envStart+"="+strconv.FormatInt(start, 10))
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("child %d: %v\n%s", i, err, stderr.String()))
				}
				outs = append(outs, strings.TrimSpace(string(out)))
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		paid := 0
		for _, o := range outs {
			if o == "paid" {
				paid++
			} else if o != "unusable" {
				t.Fatalf("child said %q", o)
			}
		}
		if paid != 1 {
			t.Fatalf("%d processes paid with one approval, want 1 (%q)", paid, outs)
		}
		if n := countRecords(t, l); n != 1 {
			t.Fatalf("%d records, want 1", n)
		}
	})
}

const envApproval = "X402_LEDGER_APPROVAL"

// helperApproval tries once to pay with the approval named in the
// environment, and prints paid or unusable.
func helperApproval() error {
	child := envInt(envChild)
	time.Sleep(time.Until(time.Unix(0, envInt(envStart))))
	l, err := Open(os.Getenv(envPath), Options{})
	if err != nil {
		return err
	}
	defer l.Close()
	r := childRecord(child, 0, 1_000)
	r.Approval = &ApprovalUse{ID: os.Getenv(envApproval), Binding: sha256.Sum256([]byte("procs"))}
	_, err = l.Reserve(context.Background(), r, nil)
	switch {
	case err == nil:
		fmt.Println("paid")
	case errors.Is(err, ErrApprovalUnusable):
		fmt.Println("unusable")
	default:
		return err
	}
	return nil
}

// The triggers refuse what no code path should do, even through raw SQL.
func TestApprovalHistoryCannotBeRewritten(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		l := bk.openNew(t, Options{})
		ctx := context.Background()
		r := rec("raw.example", 10)
		used := mustRequest(t, l, approvalFor(r, "used"), time.Hour)
		mustDecide(t, l, used.ID, true)
		paid, err := l.Reserve(ctx, paying(r, used), nil)
		if err != nil {
			t.Fatal(err)
		}
		denied := mustRequest(t, l, approvalFor(r, "denied"), time.Hour)
		mustDecide(t, l, denied.ID, false)
		approved := mustRequest(t, l, approvalFor(r, "approved"), time.Hour)
		mustDecide(t, l, approved.ID, true)
		pending := mustRequest(t, l, approvalFor(r, "pending"), time.Hour)
		other := mustReserve(t, l, rec("raw.example", 10))
		stranger := mustReserve(t, l, rec("elsewhere.example", 10))

		db := raw(t, l)
		for _, q := range []string{
			`UPDATE approvals SET state = 'approved' WHERE id = '` + used.ID + `'`,
			`UPDATE approvals SET state = 'pending', decided = 0 WHERE id = '` + used.ID + `'`,
			`UPDATE approvals SET record_id = ` + fmt.Sprint(other.ID) + ` WHERE id = '` + used.ID + `'`,
			`UPDATE approvals SET state = 'approved' WHERE id = '` + denied.ID + `'`,
			`UPDATE approvals SET decided = decided + 1 WHERE id = '` + approved.ID + `'`,
			`UPDATE approvals SET state = 'pending', decided = 0 WHERE id = '` + approved.ID + `'`,
			`UPDATE approvals SET state = 'used', record_id = ` + fmt.Sprint(other.ID) + ` WHERE id = '` + pending.ID + `'`,
			// approved → used, but by a record with other terms, or none.
			`UPDATE approvals SET state = 'used', record_id = ` + fmt.Sprint(stranger.ID) + ` WHERE id = '` + approved.ID + `'`,
			`UPDATE approvals SET state = 'used', record_id = 999 WHERE id = '` + approved.ID + `'`,
			// One record consumes at most one approval.
			`UPDATE approvals SET state = 'used', record_id = ` + fmt.Sprint(paid.ID) + ` WHERE id = '` + approved.ID + `'`,
			`UPDATE approvals SET amount = '1' WHERE id = '` + approved.ID + `'`,
			`UPDATE approvals SET binding = '` + hex.EncodeToString(make([]byte, 32)) + `' WHERE id = '` + approved.ID + `'`,
			`UPDATE approvals SET expires = expires + 3600000000000 WHERE id = '` + approved.ID + `'`,
			`UPDATE approvals SET pay_to = '0x9999999999999999999999999999999999999999' WHERE id = '` + pending.ID + `'`,
			`UPDATE approvals SET state = 'expired' WHERE id = '` + pending.ID + `'`,
			`DELETE FROM approvals WHERE id = '` + denied.ID + `'`,
		} {
			if _, err := db.Exec(q); err == nil {
				t.Errorf("%s succeeded", q)
			}
		}
		for id, want := range map[string]ApprovalState{used.ID: ApprovalUsed, denied.ID: ApprovalDenied, approved.ID: ApprovalApproved, pending.ID: ApprovalPending} {
			if got := mustApproval(t, l, id); got.State != want || (id == used.ID && got.RecordID != paid.ID) {
				t.Errorf("%s is now %+v, want %s", id, got, want)
			}
		}
		// The allowed move still works through raw SQL: the triggers refuse
		// only what breaks the invariants.
		if _, err := db.Exec(`UPDATE approvals SET state = 'used', record_id = ? WHERE id = ?`, other.ID, approved.ID); err != nil {
			t.Errorf("approved → used by a matching record: %v", err)
		}
	})
}

// A ledger written by a version with only schema v1 is migrated in place
// on Open: its records stay, and approvals work.
func TestMigrateV1Ledger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	func() {
		// The program as it was before approvals: schema v1, and none of
		// the statements that name the approvals or payloads tables.
		defer func(m, w []string, v int) { migrations, writeQueries, schemaVersion = m, w, v }(migrations, writeQueries, schemaVersion)
		migrations, schemaVersion = migrations[:1], 1
		writeQueries = slices.DeleteFunc(slices.Clone(writeQueries), func(q string) bool {
			return q == qUseApproval || q == qInFlight || q == qInsertPayload || q == qSetHeader || q == qDelivered
		})
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		mustReserve(t, l, rec("old.example", 42))
	}()
	var version, tables int
	db := rawDB(t, path)
	db.QueryRow(`PRAGMA user_version`).Scan(&version)
	db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'approvals'`).Scan(&tables)
	db.Close()
	if version != 1 || tables != 0 {
		t.Fatalf("old file: user_version %d, approvals tables %d", version, tables)
	}

	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.rdb.QueryRowContext(context.Background(), `PRAGMA user_version`).Scan(&version)
	if version != len(migrations) || schemaVersion != len(migrations) {
		t.Fatalf("user_version %d after Open, want %d", version, len(migrations))
	}
	old, err := l.Recent(context.Background(), 10)
	if err != nil || len(old) != 1 || old[0].USDNano != 42 || old[0].Host != "old.example" || old[0].State != Reserved {
		t.Fatalf("records after migration: %v %+v", err, old)
	}
	r := rec("old.example", 42)
	a := mustRequest(t, l, approvalFor(r, "after migration"), time.Hour)
	mustDecide(t, l, a.ID, true)
	if _, err := l.Reserve(context.Background(), paying(r, a), nil); err != nil {
		t.Fatal(err)
	}
	if got := mustApproval(t, l, a.ID); got.State != ApprovalUsed {
		t.Fatalf("approval after paying: %+v", got)
	}
}

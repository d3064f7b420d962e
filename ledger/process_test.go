package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The cross-process tests re-execute this test binary as child processes
// that run TestHelperProcess, which does what the environment says.
const (
	envMode     = "X402_LEDGER_HELPER"
	envPath     = "X402_LEDGER_PATH"
	envChild    = "X402_LEDGER_CHILD"
	envPrice    = "X402_LEDGER_PRICE"
	envBudget   = "X402_LEDGER_BUDGET"
	envStart    = "X402_LEDGER_START"
	envProgress = "X402_LEDGER_PROGRESS"
)

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envMode)
	if mode == "" {
		t.Skip("helper for the cross-process tests")
	}
	var err error
	switch mode {
	case "hammer":
		err = helperHammer()
	case "crash":
		err = helperCrash()
	case "approval":
		err = helperApproval()
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func envInt(name string) int64 {
	n, err := strconv.ParseInt(os.Getenv(name), 10, 64)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return n
}

// childRecord makes nonces unique across children and rounds.
func childRecord(child, seq, usd int64) Record {
	r := rec("proc.example", usd)
	r.Nonce[0] = 0xc1 // never zero (unset)
	binary.BigEndian.PutUint64(r.Nonce[8:], uint64(child))
	binary.BigEndian.PutUint64(r.Nonce[24:], uint64(seq))
	return r
}

// helperHammer reserves until the budget refuses, then prints how many
// reservations it got.
func helperHammer() error {
	child, price, budget := envInt(envChild), envInt(envPrice), envInt(envBudget)
	// Start together, so the children really contend for the file.
	time.Sleep(time.Until(time.Unix(0, envInt(envStart))))
	l, err := Open(os.Getenv(envPath), Options{})
	if err != nil {
		return err
	}
	defer l.Close()
	limits := []Limit{
		{Name: "daily budget", Window: 24 * time.Hour, MaxUSDNano: budget},
		{Name: "lifetime budget", MaxUSDNano: budget},
		{Name: "per host", Host: "proc.example", MaxUSDNano: budget},
	}
	n := 0
	for seq := int64(0); ; seq++ {
		var err error
		if child%2 == 1 {
			// Half the children take the paying flow's path: checked,
			// recorded as sent and signed in one transaction.
			_, err = l.RecordSent(context.Background(), childPayment(child, seq, price), limits, fakeSign)
		} else {
			_, err = l.Reserve(context.Background(), childRecord(child, seq, price), limits)
		}
		var be *BudgetError
		if errors.As(err, &be) {
			break
		}
		if err != nil {
			return err
		}
		n++
	}
	fmt.Printf("reserved %d\n", n)
	return nil
}

// helperCrash walks payments through their states until it is killed,
// appending each step to the progress file only after the ledger call has
// returned (so: after its commit).
func helperCrash() error {
	child := envInt(envChild)
	l, err := Open(os.Getenv(envPath), Options{})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(os.Getenv(envProgress), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	log := func(step string, id, usd int64) error {
		if _, err := fmt.Fprintf(f, "%s %d %d\n", step, id, usd); err != nil {
			return err
		}
		return f.Sync()
	}
	ctx := context.Background()
	limits := []Limit{{Name: "lifetime", MaxUSDNano: 1 << 62}, {Name: "daily", Window: 24 * time.Hour, MaxUSDNano: 1 << 62}}
	for seq := int64(0); ; seq++ {
		usd := 1000 + mrand.Int64N(1_000_000)
		if seq%2 == 1 {
			// The paying flow's path: one transaction to sent, then the
			// settlement deferred, which a kill may lose (the record
			// then stays sent, and counted).
			r, err := l.RecordSent(ctx, childPayment(child, seq, usd), limits, fakeSign)
			if err != nil {
				return err
			}
			if err := log("sent", r.ID, usd); err != nil {
				return err
			}
			if mrand.IntN(2) == 0 {
				l.SettleLater(r.ID, "0x"+strings.Repeat("cd", 32), []byte(`{"success":true}`), true, nil)
			}
			continue
		}
		r, err := l.Reserve(ctx, childRecord(child, seq, usd), limits)
		if err != nil {
			return err
		}
		if err := log("reserved", r.ID, usd); err != nil {
			return err
		}
		switch p := mrand.IntN(100); {
		case p < 10: // abandoned before signing
			if err := l.Fail(ctx, r.ID, "abandoned"); err != nil {
				return err
			}
			if err := log("failed", r.ID, usd); err != nil {
				return err
			}
			continue
		case p < 20: // left in flight: a slow signer
			continue
		}
		if err := l.MarkSent(ctx, r.ID); err != nil {
			return err
		}
		if err := log("sent", r.ID, usd); err != nil {
			return err
		}
		switch p := mrand.IntN(100); {
		case p < 50:
			if err := l.Settle(ctx, r.ID, "0x"+strings.Repeat("ab", 32), []byte(`{"success":true}`)); err != nil {
				return err
			}
			if err := log("settled", r.ID, usd); err != nil {
				return err
			}
		case p < 70:
			if err := l.MarkUnknown(ctx, r.ID, "", "timeout"); err != nil {
				return err
			}
			if err := log("unknown", r.ID, usd); err != nil {
				return err
			}
		}
	}
}

// childPayment is childRecord with a payload (a request of its own), for
// RecordSent.
func childPayment(child, seq, usd int64) Record {
	r := childRecord(child, seq, usd)
	r.Payload = &Payload{RequestKey: fmt.Sprintf("%032x%032x", child, seq)}
	return r
}

// fakeSign stands in for the policy and the signer inside RecordSent.
func fakeSign(res Reservation) (string, string, error) {
	if res.ID() == 0 {
		return "", "", errors.New("no reservation")
	}
	return "PAYMENT-SIGNATURE", "c2lnbmVk", nil
}

func helperCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), envMode+"="+mode)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func skipWithoutProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	switch runtime.GOOS {
	case "js", "wasip1", "ios", "android":
		t.Skip("cannot re-execute the test binary here")
	}
}

// Four processes hammer one budget on one (new) file. Together they get
// exactly floor(budget/price) reservations, and the file says the same.
func TestBudgetHoldsAcrossProcesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		skipWithoutProcesses(t)
		const (
			children = 4
			price    = 3_000_007
			budget   = 1_000_000_000
			want     = budget / price // 333
		)
		path := bk.place(t)
		start := time.Now().Add(500 * time.Millisecond).UnixNano()
		defer func() {
			// For the record, not an assertion: includes process start-up.
			d := time.Since(time.Unix(0, start))
			t.Logf("%d processes: %d reservations in %v (%.0f/s)", children, want, d.Round(time.Millisecond), float64(want)/d.Seconds())
		}()
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int
			errs  []error
		)
		for i := 0; i < children; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := helperCmd(t, "hammer",
					envPath+"="+path, envChild+"="+strconv.Itoa(i),
					envPrice+"="+strconv.Itoa(price), envBudget+"="+strconv.Itoa(budget),
					envStart+"="+strconv.FormatInt(start, 10))
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("child %d: %v\n%s", i, err, stderr.String()))
					return
				}
				var n int
				if _, err := fmt.Sscanf(string(out), "reserved %d", &n); err != nil {
					errs = append(errs, fmt.Errorf("child %d output %q", i, out))
					return
				}
				total += n
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		if total != want {
			t.Fatalf("children reserved %d in total, want exactly %d", total, want)
		}
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		spent, n := recount(t, l, "")
		if spent != want*price || n != want || spent > budget {
			t.Fatalf("file holds %d records worth %d nano-USD; want %d worth %d (budget %d)", n, spent, want, want*price, budget)
		}
	})
}

// Processes that open a new ledger at the same moment all succeed. Leaving
// rollback mode for WAL takes a lock SQLite does not wait for; without the
// retry in switchToWAL most runs of this test failed with SQLITE_BUSY.
func TestConcurrentOpenAcrossProcesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		skipWithoutProcesses(t)
		const rounds, children = 8, 6
		for round := 0; round < rounds; round++ {
			path := bk.place(t)
			start := time.Now().Add(200 * time.Millisecond).UnixNano()
			var wg sync.WaitGroup
			errs := make(chan error, children)
			for i := 0; i < children; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// A budget of 8 payments: the children open, share
					// them out, are refused and exit.
					cmd := helperCmd(t, "hammer", envPath+"="+path, envChild+"="+strconv.Itoa(i),
						envPrice+"=5", envBudget+"=40", envStart+"="+strconv.FormatInt(start, 10))
					if out, err := cmd.CombinedOutput(); err != nil {
						errs <- fmt.Errorf("round %d child %d: %v\n%s", round, i, err, out)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if t.Failed() {
				return
			}
		}
	})
}

type progress struct {
	last map[int64]string // id → last step the child saw committed
	usd  map[int64]int64
}

func readProgress(t *testing.T, files []string) progress {
	p := progress{last: map[int64]string{}, usd: map[int64]int64{}}
	for _, name := range files {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var step string
			var id, usd int64
			// A kill can cut the last line short; a cut line was never
			// complete, so it claims nothing.
			if n, _ := fmt.Sscanf(sc.Text(), "%s %d %d", &step, &id, &usd); n != 3 {
				continue
			}
			p.last[id], p.usd[id] = step, usd
		}
		f.Close()
	}
	return p
}

// Processes paying in a loop are killed with SIGKILL at random moments.
// Whatever a child had seen committed before it died is still in the file,
// and after Reconcile nothing it may have sent is counted as unspent.
func TestCrashNeverUnderCounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		skipWithoutProcesses(t)
		if runtime.GOOS == "windows" {
			t.Skip("SIGKILL")
		}
		const (
			rounds   = 4
			children = 3
		)
		dir := t.TempDir()
		path := bk.place(t)
		var files []string
		for round := 0; round < rounds; round++ {
			var wg sync.WaitGroup
			for i := 0; i < children; i++ {
				id := round*children + i
				prog := filepath.Join(dir, fmt.Sprintf("progress-%d", id))
				files = append(files, prog)
				cmd := helperCmd(t, "crash", envPath+"="+path, envChild+"="+strconv.Itoa(id), envProgress+"="+prog)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Let it get going, then kill it at a random moment.
					deadline := time.Now().Add(20 * time.Second)
					for time.Now().Before(deadline) {
						if fi, err := os.Stat(prog); err == nil && fi.Size() > 0 {
							break
						}
						time.Sleep(5 * time.Millisecond)
					}
					time.Sleep(time.Duration(mrand.Int64N(int64(250 * time.Millisecond))))
					cmd.Process.Signal(syscall.SIGKILL)
					err := cmd.Wait()
					var ee *exec.ExitError
					if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
						t.Errorf("child %d ended by %v before the kill\n%s", id, err, stderr.String())
					}
				}()
			}
			wg.Wait()
		}
		p := readProgress(t, files)
		sentSeen := 0
		for _, step := range p.last {
			if step == "sent" || step == "settled" || step == "unknown" {
				sentSeen++
			}
		}
		if sentSeen < 10 {
			t.Fatalf("children sent only %d payments before dying; the test proves little", sentSeen)
		}

		// Reopen an hour later, past every child's 15-minute lease.
		later := func() time.Time { return time.Now().Add(time.Hour) }
		l, err := Open(path, Options{Now: later})
		if err != nil {
			t.Fatalf("Open after kill -9: %v", err)
		}
		defer l.Close()
		ctx := context.Background()
		if !l.d.pg { // PostgreSQL's own consistency is its business; Open verified the sums
			var ok string
			if err := l.rdb.QueryRowContext(context.Background(), `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
				t.Fatalf("integrity_check: %q, %v", ok, err)
			}
		}
		before := map[int64]State{}
		// Every record, however many the children wrote (Recent is capped).
		everything := func() []Record {
			t.Helper()
			rs, err := l.query(ctx, `SELECT `+recordColumns+` FROM records ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			return rs
		}
		for _, r := range everything() {
			before[r.ID] = r.State
		}

		rep, err := l.Reconcile(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := l.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range pending {
			if r.State != Unknown {
				t.Errorf("record %d still %s after Reconcile", r.ID, r.State)
			}
		}
		after := map[int64]Record{}
		for _, r := range everything() {
			after[r.ID] = r
		}
		for id, s := range before {
			got := after[id].State
			switch s {
			case Sent:
				if got != Unknown {
					t.Errorf("record %d was sent, now %s; want unknown", id, got)
				}
			case Reserved:
				if got != Failed {
					t.Errorf("record %d was reserved by a dead process, now %s; want failed", id, got)
				}
			default:
				if got != s {
					t.Errorf("record %d was %s, Reconcile made it %s", id, s, got)
				}
			}
		}
		if len(rep.Changes) == 0 {
			t.Error("Reconcile changed nothing; the kills caught nothing in flight")
		}

		// The proof: every step a child saw committed is in the file, and
		// every payment a child may have sent is counted.
		var mustCount int64
		for id, step := range p.last {
			r, ok := after[id]
			if !ok {
				t.Errorf("record %d (%s per the child) is missing from the ledger", id, step)
				continue
			}
			if r.USDNano != p.usd[id] {
				t.Errorf("record %d: usd %d, child saw %d", id, r.USDNano, p.usd[id])
			}
			switch step {
			case "sent", "unknown":
				if r.State != Unknown && r.State != Settled {
					t.Errorf("record %d was sent, now %s: not counted", id, r.State)
				}
			case "settled":
				if r.State != Settled {
					t.Errorf("record %d was settled, now %s", id, r.State)
				}
			case "failed":
				if r.State != Failed {
					t.Errorf("record %d was failed, now %s", id, r.State)
				}
			}
			if step == "sent" || step == "unknown" || step == "settled" {
				mustCount += r.USDNano
			}
		}
		spent, _ := recount(t, l, "")
		u := usage(t, l, Limit{})
		if u.SpentUSDNano != spent {
			t.Errorf("lifetime total %d disagrees with a recount %d", u.SpentUSDNano, spent)
		}
		if u.SpentUSDNano < mustCount {
			t.Errorf("counted %d nano-USD, but children had sent %d", u.SpentUSDNano, mustCount)
		}
		// And the ledger still works.
		mustReserve(t, l, childRecord(999, 0, 1))
		t.Logf("%d records, %d seen sent by children, %d changed by Reconcile", len(after), sentSeen, len(rep.Changes))
	})
}

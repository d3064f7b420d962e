package main

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/internal/pgtest"
	"github.com/x402-mcp/x402-mcp/ledger"
)

// The fleet: every process, on any machine, shares one PostgreSQL ledger
// (README "Running a fleet"). These tests run the built binary against the
// local network with such a ledger.

// setLedger points the config at ledger loc.
func setLedger(t *testing.T, cfg, loc string) {
	t.Helper()
	rewriteConfig(t, cfg, `(?m)^ledger = .*$`, strings.ReplaceAll(fmt.Sprintf("ledger = %q", loc), "$", "$$"))
}

// rewriteConfig replaces what pattern matches in the config file with
// repl (regexp.ReplaceAllString's, $0 the match), failing the test when
// nothing matches.
func rewriteConfig(t *testing.T, cfg, pattern, repl string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(pattern)
	if !re.Match(b) {
		t.Fatalf("%s has nothing matching %s", cfg, pattern)
	}
	writePrivate(t, cfg, re.ReplaceAllString(string(b), repl), 0o600)
}

// TestFleetBudgetOnPostgres: four servers share one PostgreSQL ledger and
// get 200 paid calls at once, 50 each over their stdio sessions, from the
// official client, against a daily budget that holds exactly 50 payments
// of 0.01. Exactly 50 are paid: on chain to the atomic unit, and in the
// ledger.
func TestFleetBudgetOnPostgres(t *testing.T) {
	db := pgtest.Database(t)
	dir := tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\nmax_payments_per_minute = \"none\"\n[budget]\nday = \"0.50\"\n")
	setLedger(t, cfg, db)
	payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)

	const procs, each, admitted = 4, 50, 50
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		settled, refused  int
		unexpected        []string
		budgetRefusalText = "daily budget"
	)
	for p := range procs {
		var steps []tsStep
		for i := range each {
			steps = append(steps, fetchStep(map[string]any{"url": fmt.Sprintf("%s/v2/weather?city=p%di%d", n.APIURL, p, i)}))
		}
		pl := plan(cfg, tsStep{Op: "parallel", Steps: steps})
		pl.TimeoutMS = 120000
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := tsClientRun(t, dir, pl)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				unexpected = append(unexpected, err.Error())
				return
			}
			for _, r := range run.Steps[1].Parallel() {
				switch {
				case !r.OK:
					unexpected = append(unexpected, fmt.Sprintf("protocol error %d: %s", r.Error.Code, r.Error.Message))
				case r.IsError() && strings.Contains(r.Text(), budgetRefusalText):
					refused++
				case !r.IsError() && gjson.Get(r.Structured(), "payment.settled").Bool():
					settled++
				default:
					unexpected = append(unexpected, clipLine(r.Text(), 400))
				}
			}
		}()
	}
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("%d unexpected outcomes, first: %s", len(unexpected), unexpected[0])
	}
	if settled != admitted || refused != procs*each-admitted {
		t.Errorf("paid %d and refused %d, want %d and %d", settled, refused, admitted, procs*each-admitted)
	}
	want := big.NewInt(admitted * 10_000)
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Cmp(want) != 0 {
		t.Errorf("payer paid %s atomic units, want exactly %s", d, want)
	}
	if d := new(big.Int).Sub(chainBalance(t, n, n.PayTo), payee0); d.Cmp(want) != 0 {
		t.Errorf("payee received %s atomic units, want exactly %s", d, want)
	}

	led, err := ledger.Open(db, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	recs, err := led.Recent(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	counted := new(big.Int)
	for _, r := range recs {
		if r.State.Counted() {
			counted.Add(counted, r.Amount)
		}
	}
	if len(recs) != admitted || counted.Cmp(want) != 0 {
		t.Errorf("the ledger holds %d records counting %s atomic units, want %d counting %s", len(recs), counted, admitted, want)
	}
}

// TestFleetKilledMidPaymentOnPostgres is TestKilledMidPaymentNeverUnderCounts
// with the ledger on PostgreSQL: servers killed with SIGKILL mid-payment
// never leave the shared ledger counting less than moved on chain.
func TestFleetKilledMidPaymentOnPostgres(t *testing.T) {
	db := pgtest.Database(t)
	n, cfg, payer := devnetWithPolicy(t, "max_per_payment = \"0.10\"\n")
	setLedger(t, cfg, db)
	killMidPayment(t, n, cfg, payer, db)
}

// TestFleetDatabaseDown runs one server while its PostgreSQL ledger is
// down, up, down and up again, over one session of the official client:
//   - it starts with the database down, and answers;
//   - while the database is down, free fetches and quotes work, and a paid
//     fetch is refused, saying why, with nothing signed (the facilitator
//     verifies nothing, no money moves);
//   - when the database is back, paying resumes without a restart.
func TestFleetDatabaseDown(t *testing.T) {
	tsClientDir(t)
	c := pgtest.Start(t)
	ctx := context.Background()
	db, err := pgtest.CreateDatabase(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	setLedger(t, cfg, db)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}

	barriers := t.TempDir()
	barrier := func(name string) tsStep { return tsStep{Op: "barrier", File: filepath.Join(barriers, name)} }
	paid := func(i int) tsStep {
		return fetchStep(map[string]any{"url": fmt.Sprintf("%s/v2/weather?city=down%d", n.APIURL, i)})
	}
	free := fetchStep(map[string]any{"url": n.APIURL + "/free/status"})
	quote := tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": n.APIURL + "/v2/weather?city=q"}}
	pl := plan(cfg,
		free, quote, paid(0), // 1-3: down since the start
		barrier("up1"), paid(1), // 4-5
		barrier("down2"), free, paid(2), // 6-8
		barrier("up2"), paid(3), // 9-10
	)
	pl.TimeoutMS = 60000

	type state struct {
		verify int
		payer  *big.Int
	}
	look := func() state { return state{n.Facilitator.VerifyCalls(), chainBalance(t, n, payer)} }
	var seen []state
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait := func(name string) bool {
			for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(barriers, name+".reached")); err == nil {
					return true
				}
			}
			t.Errorf("the client never reached barrier %s", name)
			return false
		}
		release := func(name string) { os.WriteFile(filepath.Join(barriers, name+".go"), nil, 0o600) }
		for _, b := range []string{"up1", "down2", "up2"} {
			if !wait(b) {
				return
			}
			seen = append(seen, look())
			if strings.HasPrefix(b, "up") {
				if err := c.Start(); err != nil {
					t.Error(err)
				}
				// The ledger tries the database again at most once a
				// second: a paid call right after might still be refused.
				time.Sleep(1500 * time.Millisecond)
			} else if err := c.Stop(); err != nil {
				t.Error(err)
			}
			release(b)
		}
	}()
	before := look()
	run := tsClient(t, pl)
	<-done
	results := called(t, run)
	if len(seen) != 3 {
		t.Fatalf("barriers passed: %d of 3", len(seen))
	}

	// Down since the start.
	for i, what := range []string{"free fetch", "quote"} {
		if r := results[i]; r.IsError() {
			t.Errorf("%s with the ledger down: %s", what, clipLine(r.Text(), 400))
		}
	}
	refusedDown := func(r tsResult, when string, before, after state) {
		t.Helper()
		if !r.IsError() || !strings.Contains(r.Text(), "unreachable") {
			t.Errorf("paid fetch %s: want a refusal saying the ledger is unreachable, got %s", when, clipLine(r.Text(), 400))
		}
		if after.verify != before.verify || after.payer.Cmp(before.payer) != 0 {
			t.Errorf("paid fetch %s: verify calls %d → %d, payer balance %s → %s; want nothing signed or paid", when, before.verify, after.verify, before.payer, after.payer)
		}
	}
	refusedDown(results[2], "with the ledger down since the start", before, seen[0])
	paidOnce := func(r tsResult, when string) {
		t.Helper()
		if r.IsError() || !gjson.Get(r.Structured(), "payment.settled").Bool() {
			t.Errorf("paid fetch %s: want paid, got %s", when, clipLine(r.Text(), 400))
		}
	}
	paidOnce(results[4], "after the database came back")
	if r := results[6]; r.IsError() {
		t.Errorf("free fetch with the ledger down again: %s", clipLine(r.Text(), 400))
	}
	refusedDown(results[7], "after the database went away", seen[1], seen[2])
	paidOnce(results[9], "after the database came back again")

	after := look()
	if d := new(big.Int).Sub(before.payer, after.payer); d.Cmp(big.NewInt(20_000)) != 0 {
		t.Errorf("the payer paid %s atomic units in all, want exactly 20000 (two payments)", d)
	}
}

// TestLedgerMigrate pays once into a SQLite ledger, copies it into a
// PostgreSQL ledger with `x402-mcp ledger migrate --to`, twice, and checks
// the database holds the payment once, with its amount and state.
func TestLedgerMigrate(t *testing.T) {
	db := pgtest.Database(t)
	n, cfg, _ := devnetWithPolicy(t, "max_per_payment = \"0.10\"\n")
	ctx := context.Background()
	c, err := startStdioClient(ctx, bin, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_fetch",
		Arguments: map[string]any{"url": n.APIURL + "/v2/weather?city=Lima"}}})
	c.Close()
	if err != nil || r.IsError {
		t.Fatalf("paying: %v %v", err, r)
	}
	for i, want := range []string{"copied 1 payments and 0 approvals", "copied 0 payments and 0 approvals"} {
		res := runBin(t, cleanEnv(), "ledger", "migrate", "--to", db, "--config", cfg)
		if res.code != 0 || !strings.Contains(res.stdout, want) {
			t.Fatalf("run %d: exit %d, stdout %q, stderr %q; want %q", i+1, res.code, res.stdout, res.stderr, want)
		}
	}
	led, err := ledger.Open(db, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	recs, err := led.Recent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Amount.Int64() != 10_000 || recs[0].State != ledger.Settled {
		t.Fatalf("the database holds %+v, want one settled payment of 10000", recs)
	}
	if res := runBin(t, cleanEnv(), "ledger", "migrate", "--to", "/tmp/x.db", "--config", cfg); res.code != 2 {
		t.Errorf("--to a file: exit %d, want 2", res.code)
	}
}

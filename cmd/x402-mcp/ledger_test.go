package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
)

// devnetWithPolicy is devnet with the given policy file text.
func devnetWithPolicy(t *testing.T, policyText string) (*localnet.Network, string, string) {
	t.Helper()
	n, cfg, payer := devnet(t)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "policy.toml"), []byte(policyText), 0o600); err != nil {
		t.Fatal(err)
	}
	return n, cfg, payer
}

func payeeReceived(t *testing.T, n *localnet.Network, before *big.Int) *big.Int {
	t.Helper()
	b, err := n.Chain.BalanceOf(context.Background(), n.PayTo)
	if err != nil {
		t.Fatal(err)
	}
	return new(big.Int).Sub(b, before)
}

// TestBudgetAcrossProcesses: four servers (as four host windows would
// start) share one ledger and pay concurrently against one daily budget of
// 0.10 USD at 0.01 a payment. Exactly ten are paid, to the atomic unit.
func TestBudgetAcrossProcesses(t *testing.T) {
	n, cfg, _ := devnetWithPolicy(t, "max_per_payment = \"0.10\"\n[budget]\nday = \"0.10\"\n")
	ctx := context.Background()
	before := payeeReceived(t, n, big.NewInt(0))

	const procs = 4
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		paid   int
		denied int
		errs   []string
	)
	for i := range procs {
		c, err := startStdioClient(ctx, bin, cfg, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				r, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_fetch",
					Arguments: map[string]any{"url": fmt.Sprintf("%s/v2/weather?city=p%d", n.APIURL, i)}}})
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err.Error())
				case !r.IsError && gjson.Get(structuredJSON(r), "payment.settled").Bool():
					paid++
				case r.IsError && strings.Contains(resultText(r), "daily budget"):
					denied++
					mu.Unlock()
					return
				default:
					errs = append(errs, resultText(r))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d unexpected outcomes, first: %s", len(errs), errs[0])
	}
	if paid != 10 || denied != procs {
		t.Errorf("paid %d (want 10), processes stopped by the budget %d (want %d)", paid, denied, procs)
	}
	if got := payeeReceived(t, n, before); got.Int64() != 100000 {
		t.Errorf("payee received %s atomic units, want exactly 100000", got)
	}
}

// TestKilledMidPaymentNeverUnderCounts kills servers with SIGKILL at random
// moments while they pay, then reconciles the shared ledger the way the
// next server start would, and compares it with the chain: every payment
// that moved money is counted, and every payment the ledger released
// provably never happened on chain.
func TestKilledMidPaymentNeverUnderCounts(t *testing.T) {
	n, cfg, payer := devnetWithPolicy(t, "max_per_payment = \"0.10\"\n")
	killMidPayment(t, n, cfg, payer, filepath.Join(filepath.Dir(cfg), "ledger.db"))
}

// killMidPayment is TestKilledMidPaymentNeverUnderCounts on the ledger at
// loc, which cfg names: a SQLite file or a PostgreSQL database.
func killMidPayment(t *testing.T, n *localnet.Network, cfg, payer, loc string) {
	ctx := context.Background()
	before := payeeReceived(t, n, big.NewInt(0))
	rng := rand.New(rand.NewPCG(1, 2))

	for round := range 6 {
		cmd := exec.Command(bin, "serve", "--config", cfg)
		cmd.Env = cleanEnv()
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of answers, so every round makes
		// progress however slow the machine, and dies with calls in flight.
		killAfter := 1 + rng.IntN(8)
		answered := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 0, 1<<20), 8<<20)
			n := 0
			for sc.Scan() {
				if gjson.GetBytes(sc.Bytes(), "id").Int() > 0 {
					if n++; n == killAfter {
						close(answered)
					}
				}
			}
		}()
		enc := json.NewEncoder(stdin)
		enc.Encode(map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": map[string]any{
			"protocolVersion": mcp.LATEST_PROTOCOL_VERSION, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "k", "version": "1"}}})
		enc.Encode(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
		for i := range 40 {
			enc.Encode(map[string]any{"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": map[string]any{
				"name": "x402_fetch", "arguments": map[string]any{"url": fmt.Sprintf("%s/v2/weather?city=r%di%d", n.APIURL, round, i)}}})
		}
		select {
		case <-answered:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no answers from the server", round)
		}
		cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
		cmd.Wait()
	}

	// Settlements the server side had started still finish: wait until the
	// chain is quiet before comparing.
	var moved *big.Int
	for stable := 0; stable < 5; time.Sleep(100 * time.Millisecond) {
		m := payeeReceived(t, n, before)
		if moved != nil && m.Cmp(moved) == 0 {
			stable++
		} else {
			stable = 0
		}
		moved = m
	}

	// The next start reconciles: leases of the killed processes are over.
	led, err := ledger.Open(loc, ledger.Options{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	if _, err := led.Reconcile(ctx, nil); err != nil {
		t.Fatal(err)
	}
	recs, err := led.Recent(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	counted := new(big.Int)
	states := map[ledger.State]int{}
	for _, r := range recs {
		states[r.State]++
		used, err := n.Chain.AuthorizationState(ctx, common.HexToAddress(payer), r.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case r.State == ledger.Reserved || r.State == ledger.Sent:
			t.Errorf("record %d left %s after reconciling", r.ID, r.State)
		case r.State == ledger.Failed && used:
			t.Errorf("record %d was released but its authorization was used on chain: under-counted", r.ID)
		case r.State.Counted():
			counted.Add(counted, r.Amount)
		}
	}
	if counted.Cmp(moved) < 0 {
		t.Errorf("the ledger counts %s atomic units, but %s moved on chain", counted, moved)
	}
	if moved.Sign() == 0 {
		t.Error("no payment happened before the kills; the test proved nothing (make the delays longer)")
	}
	t.Logf("%d records %v; counted %s, moved on chain %s", len(recs), states, counted, moved)
}

package main

import (
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// TestConcurrentCallsOverStdio sends twelve tool calls at once over one
// stdio session, as a host does when the agent calls tools together, with
// the official client. All twelve run at once (mcp-go's stdio transport
// runs five unless told otherwise), and twelve paid fetches at once
// against a budget that admits exactly five pay exactly five: the chain
// moves five times.
func TestConcurrentCallsOverStdio(t *testing.T) {
	const calls, admitted = 12, 5
	var inFlight, most atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	barrier := localnet.Route{Method: http.MethodGet, Path: "/free/barrier", Handler: func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n >= calls {
			once.Do(func() { close(all) })
		}
		// Every call waits here until all are in, so the most seen at once
		// is how many the server runs at once (bounded, if it runs fewer).
		select {
		case <-all:
		case <-time.After(5 * time.Second):
		}
		w.Write([]byte("ok"))
	}}
	tsClientDir(t)
	// 0.01 USDC each; the day's budget holds five.
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n[budget]\nday = \"0.05\"\n", barrier)
	payer0, payee0 := chainBalance(t, n, payer), chainBalance(t, n, n.PayTo)

	var free, paid []tsStep
	for i := range calls {
		free = append(free, fetchStep(map[string]any{"url": fmt.Sprintf("%s/free/barrier?i=%d", n.APIURL, i)}))
		paid = append(paid, fetchStep(map[string]any{"url": fmt.Sprintf("%s/v2/weather?city=C%d", n.APIURL, i)}))
	}
	run := tsClient(t, plan(cfg, tsStep{Op: "parallel", Steps: free}, tsStep{Op: "parallel", Steps: paid}))
	results := called(t, run)

	for i, r := range results[0].Parallel() {
		if !r.OK || r.IsError() {
			t.Errorf("free call %d: %+v", i, r)
		}
	}
	if got := most.Load(); got != calls {
		t.Errorf("at most %d of %d calls ran at once", got, calls)
	}

	settled, refused := 0, 0
	for i, r := range results[1].Parallel() {
		switch {
		case !r.OK:
			t.Errorf("paid call %d: the official client threw %d: %s", i, r.Error.Code, r.Error.Message)
		case r.IsError():
			refused++
		case gjson.Get(r.Structured(), "payment.settled").Bool():
			settled++
		default:
			t.Errorf("paid call %d: neither paid nor refused: %s", i, r.Structured())
		}
	}
	if settled != admitted || refused != calls-admitted {
		t.Errorf("%d paid and %d refused, want %d and %d", settled, refused, admitted, calls-admitted)
	}
	want := big.NewInt(admitted * 10000)
	if d := new(big.Int).Sub(payer0, chainBalance(t, n, payer)); d.Cmp(want) != 0 {
		t.Errorf("payer paid %s, want %s", d, want)
	}
	if d := new(big.Int).Sub(chainBalance(t, n, n.PayTo), payee0); d.Cmp(want) != 0 {
		t.Errorf("payee received %s, want %s", d, want)
	}
}

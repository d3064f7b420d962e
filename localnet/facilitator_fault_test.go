package localnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/tidwall/gjson"
)

// authorizationUsed reads authorizationState(payer, nonce) on chain.
func authorizationUsed(t testing.TB, n *Network, p *payer, nonce [32]byte) bool {
	t.Helper()
	used, err := n.Chain.AuthorizationState(context.Background(), p.addr, nonce)
	if err != nil {
		t.Fatalf("AuthorizationState: %v", err)
	}
	return used
}

// eventually polls cond until it holds, failing the test after within.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postWithTimeout POSTs body to the facilitator with a client that gives up
// after timeout, as an impatient resource server would.
func postWithTimeout(n *Network, path string, body []byte, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post(n.FacilitatorURL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return err
}

// checkOneTransfer asserts the chain holds exactly one settlement of a:
// the authorization is used, the payee got price, and the facilitator sent
// one transaction for it.
func checkOneTransfer(t *testing.T, n *Network, p *payer, a authorization, price int64) {
	t.Helper()
	if !authorizationUsed(t, n, p, a.Nonce) {
		t.Error("authorization unused")
	}
	if b := balance(t, n, n.PayTo); b != price {
		t.Errorf("payee balance %d, want %d", b, price)
	}
	sent := 0
	for _, b := range n.Facilitator.Broadcasts() {
		if b.Payer == p.addr && b.Nonce == a.Nonce {
			sent++
		}
	}
	if sent != 1 {
		t.Errorf("%d settlement transactions for the authorization, want 1 (%v)", sent, n.Facilitator.Broadcasts())
	}
}

// TestFaultReasonLeavesChainUntouched: a Reason fault answers the given
// errorReason without verifying or sending, for Times requests only.
func TestFaultReasonLeavesChainUntouched(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	body, a := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})

	n.Facilitator.SetFault(Fault{Reason: "unexpected_settle_error", Message: "injected", Times: 1})
	status, data := postFacilitator(t, n, "/settle", body)
	want := `{"success":false,"errorReason":"unexpected_settle_error","errorMessage":"injected","transaction":"",` +
		`"network":"eip155:1337","payer":"` + p.addr.Hex() + `"}`
	if status != 200 || string(data) != want {
		t.Fatalf("/settle: %d\n got %s\nwant %s", status, data, want)
	}
	if authorizationUsed(t, n, p, a.Nonce) || balance(t, n, n.PayTo) != 0 || len(n.Facilitator.Broadcasts()) != 0 || n.Facilitator.Settled() != 0 {
		t.Fatal("a refused settlement touched the chain")
	}

	// Times was 1: the same payment now settles.
	status, data = postFacilitator(t, n, "/settle", body)
	if status != 200 || !gjson.GetBytes(data, "success").Bool() {
		t.Fatalf("/settle after the fault: %d %s", status, data)
	}
	checkOneTransfer(t, n, p, a, 10_000)
	if n.Facilitator.SettleCalls() != 2 || n.Facilitator.VerifyCalls() != 0 {
		t.Errorf("SettleCalls %d, VerifyCalls %d", n.Facilitator.SettleCalls(), n.Facilitator.VerifyCalls())
	}
}

// TestFaultSettleThenStall: the transfer is mined while the answer is held
// back; the caller that gave up has paid without being told.
func TestFaultSettleThenStall(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	body, a := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})

	n.Facilitator.SetFault(Fault{After: 3 * time.Second, Times: 1})
	err := postWithTimeout(n, "/settle", body, 500*time.Millisecond)
	var netErr interface{ Timeout() bool }
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("/settle with a stalled answer: %v, want a timeout", err)
	}
	// The answer is still held back, but the money moves.
	eventually(t, 10*time.Second, "the stalled settlement never reached the chain", func() bool {
		return authorizationUsed(t, n, p, a.Nonce) && n.Facilitator.Settled() == 1
	})
	checkOneTransfer(t, n, p, a, 10_000)

	// The same payment again is the reference answer for a used nonce, and
	// sends nothing.
	_, data := postFacilitator(t, n, "/settle", body)
	if gjson.GetBytes(data, "errorReason").String() != reasonNonceUsed {
		t.Errorf("/settle of the settled payment: %s", data)
	}
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestFaultStallThenSettle: the settlement waits; the caller gives up
// before anything moved, and the transfer happens after all.
func TestFaultStallThenSettle(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	body, a := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})

	n.Facilitator.SetFault(Fault{Before: 2 * time.Second, Times: 1})
	if err := postWithTimeout(n, "/settle", body, 300*time.Millisecond); err == nil {
		t.Fatal("/settle answered during the stall")
	}
	if authorizationUsed(t, n, p, a.Nonce) || len(n.Facilitator.Broadcasts()) != 0 {
		t.Fatal("settled before the stall ended")
	}
	eventually(t, 10*time.Second, "the settlement after the stall never reached the chain", func() bool {
		return authorizationUsed(t, n, p, a.Nonce)
	})
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestFaultPending: the transfer is broadcast and the answer is
// settlement_pending with its hash, before it is mined; settling the same
// payment again reconciles that transaction instead of sending another.
func TestFaultPending(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	body, a := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})

	n.Facilitator.SetFault(Fault{Pending: true, Times: 2})
	status, data := postFacilitator(t, n, "/settle", body)
	tx := gjson.GetBytes(data, "transaction").String()
	if status != 200 || gjson.GetBytes(data, "success").Bool() || gjson.GetBytes(data, "errorReason").String() != "settlement_pending" ||
		len(tx) != 66 || gjson.GetBytes(data, "network").String() != n.Chain.Network() ||
		gjson.GetBytes(data, "payer").String() != p.addr.Hex() {
		t.Fatalf("/settle: %d %s", status, data)
	}
	// Broadcast, not mined.
	if _, err := n.Chain.Client().TransactionReceipt(context.Background(), common.HexToHash(tx)); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("receipt of the pending transaction: %v", err)
	}
	if _, isPending, err := n.Chain.Client().TransactionByHash(context.Background(), common.HexToHash(tx)); err != nil || !isPending {
		t.Fatalf("pending transaction in the pool: pending=%v %v", isPending, err)
	}
	if authorizationUsed(t, n, p, a.Nonce) || n.Facilitator.Settled() != 0 {
		t.Fatal("a pending settlement is already done")
	}
	if got := n.Facilitator.Broadcasts(); len(got) != 1 || got[0] != (Broadcast{Payer: p.addr, Nonce: a.Nonce, Tx: common.HexToHash(tx)}) {
		t.Fatalf("Broadcasts %v", got)
	}

	// While the fault holds, the same payment is pending with the same hash.
	_, data = postFacilitator(t, n, "/settle", body)
	if gjson.GetBytes(data, "errorReason").String() != "settlement_pending" || gjson.GetBytes(data, "transaction").String() != tx {
		t.Fatalf("second /settle under the fault: %s", data)
	}
	// Then it is reconciled: the same transaction, mined.
	_, data = postFacilitator(t, n, "/settle", body)
	if !gjson.GetBytes(data, "success").Bool() || gjson.GetBytes(data, "transaction").String() != tx {
		t.Fatalf("/settle after the fault: %s", data)
	}
	checkOneTransfer(t, n, p, a, 10_000)
	if n.Facilitator.Settled() != 1 {
		t.Errorf("Settled %d", n.Facilitator.Settled())
	}
}

// TestFaultPendingMinedMeanwhile: a pending transfer mined by somebody
// else's block is still reconciled as a success with its hash, although
// /verify now refuses the payment as used.
func TestFaultPendingMinedMeanwhile(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	body, a := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})

	n.Facilitator.SetFault(Fault{Pending: true, Times: 1})
	_, data := postFacilitator(t, n, "/settle", body)
	tx := common.HexToHash(gjson.GetBytes(data, "transaction").String())
	receipt, err := n.Chain.WaitMined(context.Background(), tx)
	if err != nil || receipt.Status != 1 {
		t.Fatalf("WaitMined: %v %v", receipt, err)
	}
	checkOneTransfer(t, n, p, a, 10_000)

	if _, data := postFacilitator(t, n, "/verify", body); gjson.GetBytes(data, "invalidReason").String() != reasonNonceUsed {
		t.Errorf("/verify of the mined payment: %s", data)
	}
	_, data = postFacilitator(t, n, "/settle", body)
	if !gjson.GetBytes(data, "success").Bool() || gjson.GetBytes(data, "transaction").String() != tx.Hex() {
		t.Fatalf("/settle reconciling a mined transfer: %s", data)
	}
	checkOneTransfer(t, n, p, a, 10_000)
}

// TestFaultTimesUnderConcurrency: Times counts requests exactly however
// they interleave.
func TestFaultTimesUnderConcurrency(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	const requests, faulty = 6, 3
	bodies := make([][]byte, requests)
	for i := range bodies {
		bodies[i], _ = facilitatorBody(t, n, newPayer(t, n, 1_000_000), requirement(t, n, 1_000, nil), payOptions{})
	}
	n.Facilitator.SetFault(Fault{Reason: "injected_reason", Times: faulty})
	outcomes := make([]string, requests)
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, data := postFacilitator(goroutineTB{t}, n, "/settle", bodies[i])
			outcomes[i] = gjson.GetBytes(data, "errorReason").String()
			if gjson.GetBytes(data, "success").Bool() {
				outcomes[i] = "ok"
			}
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for _, o := range outcomes {
		count[o]++
	}
	if count["injected_reason"] != faulty || count["ok"] != requests-faulty {
		t.Errorf("outcomes %v", outcomes)
	}
	if b := balance(t, n, n.PayTo); b != (requests-faulty)*1_000 {
		t.Errorf("payee balance %d", b)
	}
}

// TestFaultStallEndsOnClose: closing the network cuts a stall short, so a
// forgotten fault cannot hold a test up. Without that, the servers'
// shutdown would give up on the stalled request and Close would fail.
func TestFaultStallEndsOnClose(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, NetworkConfig{})
	p := newPayer(t, n, 1_000_000)
	body, _ := facilitatorBody(t, n, p, requirement(t, n, 10_000, nil), payOptions{})
	n.Facilitator.SetFault(Fault{Before: MaxFaultStall})
	done := make(chan error, 1)
	go func() { done <- postWithTimeout(n, "/settle", body, time.Minute) }()
	eventually(t, 10*time.Second, "the settle request never arrived", func() bool { return n.Facilitator.SettleCalls() == 1 })
	if err := n.Close(); err != nil {
		t.Fatalf("Close during a stall: %v", err)
	}
	<-done
}

func TestSetFaultRejectsInvalidFaults(t *testing.T) {
	t.Parallel()
	f := &Facilitator{}
	for name, ft := range map[string]Fault{
		"negative stall":    {Before: -time.Second},
		"stall over cap":    {After: MaxFaultStall + time.Second},
		"negative times":    {Reason: "x", Times: -1},
		"reason and pend":   {Reason: "x", Pending: true},
		"message no reason": {Message: "m"},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "localnet: ") {
					t.Errorf("%s: recovered %v, want a localnet panic", name, r)
				}
			}()
			f.SetFault(ft)
		}()
	}
}

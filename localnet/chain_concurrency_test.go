package localnet_test

import (
	"crypto/ecdsa"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/x402-mcp/x402-mcp/localnet"
)

func TestConcurrentSettlementsFromOneSender(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	payerKey, _ := newAccount(t, c, nil, usdc100)
	facilitator, _ := newAccount(t, c, oneEth, nil)
	_, payee := newAccount(t, c, nil, nil)

	const n = 50
	start := time.Now()
	receipts := settleConcurrently(t, c, n, []*ecdsa.PrivateKey{payerKey}, payee, []*ecdsa.PrivateKey{facilitator})
	blocks := blocksUsed(receipts)
	t.Logf("%d settlements from one sender in %v across %d blocks", n, time.Since(start), blocks)

	want := int64(0)
	for i := range n {
		want += int64(1000 + i)
	}
	if got := balance(t, c, payee); got.Int64() != want {
		t.Fatalf("payee balance = %v, want %d", got, want)
	}
	// Batching is the point of the single miner: 50 transactions must not
	// need anywhere near 50 blocks (and so 50 seconds of chain time).
	if blocks > n/5 {
		t.Fatalf("%d settlements used %d blocks; the miner is not batching", n, blocks)
	}
}

func TestConcurrentSettlementsManySenders(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	var payers, senders []*ecdsa.PrivateKey
	for range 4 {
		k, _ := newAccount(t, c, nil, usdc100)
		payers = append(payers, k)
		s, _ := newAccount(t, c, oneEth, nil)
		senders = append(senders, s)
	}
	_, payee := newAccount(t, c, nil, nil)

	const n = 200
	start := time.Now()
	receipts := settleConcurrently(t, c, n, payers, payee, senders)
	elapsed := time.Since(start)
	t.Logf("%d settlements from %d senders in %v across %d blocks", n, len(senders), elapsed, blocksUsed(receipts))

	want := int64(0)
	for i := range n {
		want += int64(1000 + i)
	}
	if got := balance(t, c, payee); got.Int64() != want {
		t.Fatalf("payee balance = %v, want %d", got, want)
	}
}

func TestSameAuthorizationSettledConcurrently(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)
	payerKey, payer := newAccount(t, c, nil, usdc100)
	_, payee := newAccount(t, c, nil, nil)
	var senders []*ecdsa.PrivateKey
	for range 4 {
		k, _ := newAccount(t, c, oneEth, nil)
		senders = append(senders, k)
	}
	a := authorization(t, c, payer, payee, 777)
	sig := sign(t, payerKey, chainDomain(c), a)

	// Every copy passes simulation before any is mined, so the losers are
	// caught by the contract on chain, not by the pre-flight check.
	var wg sync.WaitGroup
	receipts := make([]*types.Receipt, len(senders))
	errs := make([]error, len(senders))
	for i, sender := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			receipts[i], errs[i] = c.TransferWithAuthorization(ctx, sender, a, sig)
		}()
	}
	wg.Wait()
	won, onChain := 0, 0
	for i, err := range errs {
		var re *localnet.RevertError
		switch {
		case err == nil:
			won++
		case errors.Is(err, localnet.ErrTxReverted):
			onChain++
			if receipts[i] == nil || receipts[i].Status != types.ReceiptStatusFailed {
				t.Fatalf("on-chain revert without a failed receipt: %+v", receipts[i])
			}
		case errors.As(err, &re) && re.Reason == reasonUsed:
		default:
			t.Fatalf("settlement %d: unexpected error %v", i, err)
		}
	}
	t.Logf("%d copies: %d settled, %d reverted on chain, %d refused before sending", len(senders), won, onChain, len(senders)-won-onChain)
	if won != 1 {
		t.Fatalf("%d of %d copies of one authorization settled, want exactly 1", won, len(senders))
	}
	if got := balance(t, c, payee); got.Int64() != 777 {
		t.Fatalf("payee balance = %v, want 777", got)
	}
}

func TestChainTimeStaysNearWallClock(t *testing.T) {
	t.Parallel()
	const drift = 2 * time.Second
	c := newChain(t, localnet.ChainConfig{MaxClockDrift: drift})
	ctx := testCtx(t)
	payerKey, payer := newAccount(t, c, nil, usdc100)
	facilitator, _ := newAccount(t, c, oneEth, nil)
	_, payee := newAccount(t, c, nil, nil)

	// checkDrift returns how far r's block is ahead of wall-clock time and
	// fails if that exceeds the limit. Wall-clock is read after the block
	// exists, so it can only be later than when the block was sealed; the
	// bound is therefore never looser than what the miner promised.
	checkDrift := func(r *types.Receipt) time.Duration {
		t.Helper()
		h, err := c.Client().HeaderByHash(ctx, r.BlockHash)
		if err != nil {
			t.Fatal(err)
		}
		ahead := time.Unix(int64(h.Time), 0).Sub(time.Now())
		if ahead > drift {
			t.Fatalf("block %d is %v ahead of wall-clock time, limit %v", h.Number, ahead, drift)
		}
		return ahead
	}

	// Sequential settlements each need a block of their own, so without the
	// throttle every one would push chain time a further second ahead. Keep
	// going until the chain has sat at the edge of its budget for a few
	// settlements, which proves the miner held blocks back rather than the
	// test merely being slow.
	const (
		maxSequential = 15
		wantAtEdge    = 5
	)
	start := time.Now()
	var atEdge, settled int
	var prevBlock uint64
	for atEdge < wantAtEdge {
		if settled == maxSequential {
			// Each settlement took about a second or more (a loaded
			// machine), so the chain never ran ahead: the bound held
			// trivially and the throttle was not exercised this time.
			t.Logf("chain time never reached the drift limit in %d sequential settlements; the machine is slow", settled)
			break
		}
		a := authorization(t, c, payer, payee, int64(settled+1))
		r, err := c.TransferWithAuthorization(ctx, facilitator, a, sign(t, payerKey, chainDomain(c), a))
		if err != nil {
			t.Fatalf("settlement %d: %v", settled, err)
		}
		if n := r.BlockNumber.Uint64(); n <= prevBlock {
			t.Fatalf("sequential settlement %d landed in block %d after block %d", settled, n, prevBlock)
		}
		prevBlock = r.BlockNumber.Uint64()
		settled++
		if checkDrift(r) > drift-time.Second {
			atEdge++
		}
	}
	t.Logf("%d sequential settlements took %v with MaxClockDrift %v", settled, time.Since(start), drift)

	// A burst after the budget is spent must still be served promptly, in
	// one or two blocks rather than one block per second each.
	start = time.Now()
	receipts := settleConcurrently(t, c, 20, []*ecdsa.PrivateKey{payerKey}, payee, []*ecdsa.PrivateKey{facilitator})
	for _, r := range receipts {
		checkDrift(r)
	}
	t.Logf("burst of 20 after the budget was spent: %v, %d blocks", time.Since(start), blocksUsed(receipts))
	if blocks := blocksUsed(receipts); blocks > 4 {
		t.Fatalf("burst of 20 used %d blocks", blocks)
	}
}

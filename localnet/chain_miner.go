package localnet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

const (
	// maxMineAttempts bounds how many blocks a caller waits for a transaction
	// the pool accepted; a valid one lands in the next block, so running out
	// means it is stuck.
	maxMineAttempts = 8
	// maxGather caps how long the miner holds a block for submitters that are
	// still on their way (see Chain.gather), so one slow caller cannot stall
	// everybody else's receipts.
	maxGather = 250 * time.Millisecond
)

// WaitMined asks the miner for blocks until the transaction is included and
// returns its receipt. It is how a transaction sent through Client gets
// mined.
func (c *Chain) WaitMined(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	return c.waitMined(ctx, hash, func() {})
}

// waitMined is WaitMined for callers registered with beginSubmit: requested
// is called once the first block request has reached the miner.
func (c *Chain) waitMined(ctx context.Context, hash common.Hash, requested func()) (*types.Receipt, error) {
	for attempt := 0; ; attempt++ {
		r, err := c.client.TransactionReceipt(ctx, hash)
		if err == nil {
			return r, nil
		}
		if !notFound(err) {
			return nil, err
		}
		if attempt > 0 {
			// A block was built since the transaction was sent; if the pool no
			// longer holds it either, no later block will include it.
			if _, _, err := c.client.TransactionByHash(ctx, hash); notFound(err) {
				return nil, fmt.Errorf("localnet: transaction %s was dropped from the pool", hash)
			}
		}
		if attempt == maxMineAttempts {
			return nil, fmt.Errorf("localnet: transaction %s not mined after %d blocks", hash, maxMineAttempts)
		}
		if err := c.requestBlock(ctx, requested); err != nil {
			return nil, err
		}
	}
}

// notFound reports whether a lookup by transaction hash found nothing. A nil
// error (the lookup found the transaction) is not "not found".
func notFound(err error) bool {
	return errors.Is(err, ethereum.NotFound)
}

// beginSubmit registers a caller that is about to send transactions and will
// then ask for a block. The returned function deregisters it; it is
// idempotent, and is called as soon as the block request is in (or on any
// early return) so the miner never waits on a caller that is itself waiting.
func (c *Chain) beginSubmit() func() {
	c.submitting.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			if c.submitting.Add(-1) == 0 {
				select {
				case c.idle <- struct{}{}:
				default: // a wake-up is already pending
				}
			}
		})
	}
}

// requestBlock returns once a block has been sealed after the call began,
// so any transaction the caller had already handed to the pool is in it (or
// was dropped as invalid). requested is called once the miner has taken the
// request.
func (c *Chain) requestBlock(ctx context.Context, requested func()) error {
	// Buffered so the miner never blocks handing over the outcome.
	done := make(chan error, 1)
	select {
	case c.mineReq <- done:
		requested()
	case <-c.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-c.minerDone:
		// The miner may have quit with our request still batched.
		select {
		case err := <-done:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mine is the only goroutine that seals blocks. Requests that arrive while
// a block is being built, while the miner waits for the clock, or while other
// submitters are still sending are all served by the next single seal; that
// keeps the block count, and with it chain time, proportional to elapsed time
// rather than to the number of transactions.
func (c *Chain) mine() {
	defer close(c.minerDone)
	var batch []chan error
	receive := func(done chan error) { batch = append(batch, done) }
	for {
		if len(batch) == 0 {
			select {
			case <-c.quit:
				return
			case done := <-c.mineReq:
				receive(done)
			}
		}
		for wait := c.clockWait(); wait > 0; wait = c.clockWait() {
			if !c.sleep(wait, receive) {
				return
			}
		}
		if !c.gather(receive) {
			return
		}
		err := c.backend.seal(time.Now())
		for _, done := range batch {
			done <- err
		}
		batch = nil
	}
}

// sleep waits for d while still taking requests. It returns false if the
// chain is closing.
func (c *Chain) sleep(d time.Duration, receive func(chan error)) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-c.quit:
			return false
		case done := <-c.mineReq:
			receive(done)
		case <-timer.C:
			return true
		}
	}
}

// gather holds the block until every registered submitter has either asked
// for it or given up, at most maxGather. Callers released by one block
// together come back as a burst whose sends are serialised per account, so
// without this the burst would trickle into many small blocks, each costing a
// second of chain time. It returns false if the chain is closing.
func (c *Chain) gather(receive func(chan error)) bool {
	timer := time.NewTimer(maxGather)
	defer timer.Stop()
	for c.submitting.Load() > 0 {
		select {
		case <-c.quit:
			return false
		case done := <-c.mineReq:
			receive(done)
		case <-c.idle:
		case <-timer.C:
			return true
		}
	}
	// Take requests already queued behind the ones we have.
	for {
		select {
		case done := <-c.mineReq:
			receive(done)
		default:
			return true
		}
	}
}

// clockWait returns how long to hold the next block so that its timestamp,
// max(now, parent+1) in whole seconds, stays within drift of wall-clock time.
func (c *Chain) clockWait() time.Duration {
	next := time.Unix(int64(c.backend.CurrentHeader().Time)+1, 0)
	return time.Until(next.Add(-c.drift))
}

package localnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"
)

// addTx checks tx against the head state, as a node's pool would on
// eth_sendRawTransaction, and queues it for the next block.
//
// The pool takes each sender's transactions strictly in nonce order: Chain
// sends under a per-sender lock, so a gap could only come from a mistake, and
// refusing it at once beats a transaction that silently never gets mined.
// Replacing a pooled transaction is not supported either. Every nonce error
// says "nonce", which is what Chain.send resynchronises on.
func (b *backend) addTx(tx *types.Transaction) error {
	if tx.Type() == types.BlobTxType {
		return errors.New("localnet: blob transactions are not supported")
	}
	from, err := types.Sender(b.signer, tx)
	if err != nil {
		return fmt.Errorf("localnet: invalid sender: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if _, ok := b.mined[tx.Hash()]; ok {
		return fmt.Errorf("localnet: transaction %s already known", tx.Hash())
	}
	head := b.headers[len(b.headers)-1]
	st, err := state.New(head.Root, b.sdb)
	if err != nil {
		return err
	}
	onChain := st.GetNonce(from)
	next, pooled := b.pending[from]
	if !pooled {
		next = onChain
	}
	switch {
	case tx.Nonce() < onChain:
		return fmt.Errorf("%w: address %s, tx: %d state: %d", core.ErrNonceTooLow, from, tx.Nonce(), onChain)
	case tx.Nonce() < next:
		return fmt.Errorf("localnet: nonce %d of %s is taken by a pooled transaction", tx.Nonce(), from)
	case tx.Nonce() > next:
		return fmt.Errorf("%w: address %s, tx: %d next: %d", core.ErrNonceTooHigh, from, tx.Nonce(), next)
	}
	if err := b.checkTxLimits(tx, from, head, st); err != nil {
		return err
	}
	b.pool = append(b.pool, pooledTx{tx: tx, from: from})
	b.pending[from] = tx.Nonce() + 1
	return nil
}

// checkTxLimits rejects what could never be mined in the next block: too
// much or too little gas, a fee cap under the next base fee, or a sender that
// cannot pay for gas and value.
func (b *backend) checkTxLimits(tx *types.Transaction, from common.Address, head *types.Header, st *state.StateDB) error {
	number, at := new(big.Int).Add(head.Number, common.Big1), head.Time+1
	if tx.Gas() > head.GasLimit || (b.config.IsOsaka(number, at) && tx.Gas() > params.MaxTxGas) {
		return fmt.Errorf("%w: %d", core.ErrGasLimitTooHigh, tx.Gas())
	}
	value, overflow := uint256.FromBig(tx.Value())
	if overflow {
		return core.ErrInsufficientFunds
	}
	intrinsic, err := core.IntrinsicGas(tx.Data(), tx.AccessList(), tx.SetCodeAuthorizations(), from, tx.To(), value, b.config.Rules(number, true, at))
	if err != nil {
		return err
	}
	if tx.Gas() < intrinsic {
		return fmt.Errorf("%w: have %d, want %d", core.ErrIntrinsicGas, tx.Gas(), intrinsic)
	}
	if tx.GasFeeCapIntCmp(tx.GasTipCap()) < 0 {
		return core.ErrTipAboveFeeCap
	}
	if baseFee := eip1559.CalcBaseFee(b.config, head); tx.GasFeeCapIntCmp(baseFee) < 0 {
		return fmt.Errorf("%w: fee cap %s, base fee %s", core.ErrFeeCapTooLow, tx.GasFeeCap(), baseFee)
	}
	if st.GetBalance(from).ToBig().Cmp(tx.Cost()) < 0 {
		return fmt.Errorf("%w: address %s", core.ErrInsufficientFunds, from)
	}
	return nil
}

// pendingNonce is the nonce the sender's next transaction must carry.
func (b *backend) pendingNonce(addr common.Address) (uint64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, ErrClosed
	}
	if n, ok := b.pending[addr]; ok {
		return n, nil
	}
	st, err := state.New(b.headers[len(b.headers)-1].Root, b.sdb)
	if err != nil {
		return 0, err
	}
	return st.GetNonce(addr), nil
}

// seal executes the pooled transactions on top of the head and appends the
// resulting block, timestamped max(now, parent+1). It follows geth's own
// block building (miner/worker.go): pre-block system calls, each transaction
// through core.ApplyTransaction with a state snapshot to undo it if it is
// invalid, post-block system calls, commit. Invalid transactions (stale
// nonce, fee cap under the base fee, no funds for gas) leave the pool as a
// node would evict them; ones that do not fit in the block's gas wait for the
// next block, with their sender's later nonces behind them.
func (b *backend) seal(now time.Time) error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	parent := b.headers[len(b.headers)-1]
	pool := slices.Clone(b.pool)
	b.mu.RUnlock()

	header := b.nextHeader(parent, now)
	st, err := state.New(parent.Root, b.sdb)
	if err != nil {
		return fmt.Errorf("localnet: open head state: %w", err)
	}
	evm := vm.NewEVM(core.NewEVMBlockContext(header, b, &header.Coinbase), st, b.config, vm.Config{})
	defer evm.Release()
	ctx := context.Background()
	core.PreExecution(ctx, header.ParentBeaconRoot, parent, b.config, evm, header.Number, header.Time)

	var (
		gp       = core.NewGasPool(header.GasLimit)
		txs      []*types.Transaction
		receipts types.Receipts
		logs     []*types.Log
		leaving  = make(map[common.Hash]bool, len(pool))
		waiting  = make(map[common.Address]bool)
	)
	for _, p := range pool {
		if waiting[p.from] || gp.Available(false) < p.tx.Gas() {
			waiting[p.from] = true
			continue
		}
		leaving[p.tx.Hash()] = true
		snap, gasSnap := st.Snapshot(), gp.Snapshot()
		st.SetTxContext(p.tx.Hash(), len(txs), uint32(len(txs)+1))
		receipt, _, err := core.ApplyTransaction(ctx, evm, gp, st, header, p.tx)
		if err != nil {
			st.RevertToSnapshot(snap)
			gp.Set(gasSnap)
			continue
		}
		txs, receipts = append(txs, p.tx), append(receipts, receipt)
		logs = append(logs, receipt.Logs...)
	}
	header.GasUsed = gp.Used()
	requests, _, err := core.PostExecution(ctx, b.config, header.Number, header.Time, logs, nil, evm, uint32(len(txs)+1))
	if err != nil {
		return fmt.Errorf("localnet: post-block system calls: %w", err)
	}
	if requests != nil {
		h := types.CalcRequestsHash(requests)
		header.RequestsHash = &h
	}
	if header.Root, err = st.Commit(b.config.Rules(header.Number, true, header.Time), header.Number.Uint64()); err != nil {
		return fmt.Errorf("localnet: commit state: %w", err)
	}
	body := &types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}
	block := types.NewBlock(header, body, receipts, trie.NewStackTrie(nil))
	// Receipts were made before the block hash existed; this fills in the
	// hash, log indexes and effective gas prices as a node's lookups would.
	if err := receipts.DeriveFields(b.config, block.Hash(), block.NumberU64(), block.Time(), block.BaseFee(), eip4844.CalcBlobFee(b.config, header), txs); err != nil {
		return fmt.Errorf("localnet: derive receipt fields: %w", err)
	}
	return b.publish(block, receipts, leaving)
}

// nextHeader is the header of the block after parent, before execution.
func (b *backend) nextHeader(parent *types.Header, now time.Time) *types.Header {
	h := &types.Header{
		ParentHash: parent.Hash(),
		Number:     new(big.Int).Add(parent.Number, common.Big1),
		GasLimit:   parent.GasLimit,
		Time:       max(uint64(max(now.Unix(), 0)), parent.Time+1),
		Difficulty: new(big.Int), // proof of stake
		BaseFee:    eip1559.CalcBaseFee(b.config, parent),
		// A beacon chain would supply these two; zero and random values keep
		// EIP-4788 and PREVRANDAO working without one.
		ParentBeaconRoot: new(common.Hash),
	}
	_, _ = rand.Read(h.MixDigest[:])
	excess := eip4844.CalcExcessBlobGas(b.config, parent, h.Time)
	h.ExcessBlobGas, h.BlobGasUsed = &excess, new(uint64)
	return h
}

// publish makes block the head, records its transactions and drops the ones
// that left the pool. It also keeps the newest keptStates states referenced
// in the trie database and releases the one that falls out of that window.
func (b *backend) publish(block *types.Block, receipts types.Receipts, leaving map[common.Hash]bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	h := block.Header()
	b.headers = append(b.headers, h)
	b.byHash[block.Hash()] = h
	for i, tx := range block.Transactions() {
		b.mined[tx.Hash()] = minedTx{tx: tx, receipt: receipts[i]}
	}
	// Transactions sent while the block was built were not in its snapshot
	// of the pool and so are not in leaving: they stay.
	kept := b.pool[:0]
	clear(b.pending)
	for _, p := range b.pool {
		if !leaving[p.tx.Hash()] {
			kept = append(kept, p)
			b.pending[p.from] = p.tx.Nonce() + 1
		}
	}
	clear(b.pool[len(kept):])
	b.pool = kept

	if err := b.tdb.Reference(h.Root, common.Hash{}); err != nil {
		return err
	}
	b.roots = append(b.roots, h.Root)
	if len(b.roots) > keptStates {
		if err := b.tdb.Dereference(b.roots[0]); err != nil {
			return err
		}
		b.roots = b.roots[1:]
	}
	return nil
}

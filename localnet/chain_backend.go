package localnet

import (
	"fmt"
	"maps"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus"
	"github.com/ethereum/go-ethereum/consensus/beacon"
	"github.com/ethereum/go-ethereum/consensus/ethash"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/triedb"
)

const (
	// blockGasLimit is geth's default gas ceiling; Osaka caps a single
	// transaction at params.MaxTxGas anyway.
	blockGasLimit = 60_000_000
	// keptStates is how many recent block states stay readable. Older ones
	// are released so a long-running demo does not keep every state it ever
	// had; the margin covers reads that opened a state just before a burst of
	// blocks.
	keptStates = 64
)

// backend is the chain proper: blocks, receipts and state held in memory, the
// transaction pool, and block assembly on go-ethereum's own state transition
// (see chain_block.go). It is everything a node does for us minus networking,
// consensus and persistence, which a single-process test chain has no use
// for. Reads are safe for concurrent use; seal must only be called from one
// goroutine at a time (the miner).
type backend struct {
	config *params.ChainConfig
	signer types.Signer
	// engine is only consulted for a header's author by go-ethereum helpers
	// that build an EVM context (gas estimation); blocks are never verified.
	engine consensus.Engine
	tdb    *triedb.Database
	sdb    state.Database

	mu      sync.RWMutex
	closed  bool
	headers []*types.Header // canonical chain, indexed by number
	byHash  map[common.Hash]*types.Header
	mined   map[common.Hash]minedTx
	pool    []pooledTx                // waiting for a block, in arrival order
	pending map[common.Address]uint64 // next nonce of each sender with pooled transactions
	roots   []common.Hash             // state roots kept readable, oldest first
}

type minedTx struct {
	tx      *types.Transaction
	receipt *types.Receipt
}

type pooledTx struct {
	tx   *types.Transaction
	from common.Address
}

// osakaConfig is geth's dev-chain configuration pinned to Osaka. The dev
// configuration also enables forks still in development (Amsterdam with
// EIP-8037 state-gas metering, Bogota) under which a first storage write costs
// several times more gas, so settlement costs would look nothing like those on
// today's public chains.
func osakaConfig() *params.ChainConfig {
	rules := *params.AllDevChainProtocolChanges
	rules.BPO1Time, rules.BPO2Time, rules.BPO3Time, rules.BPO4Time, rules.BPO5Time = nil, nil, nil, nil, nil
	rules.AmsterdamTime, rules.BogotaTime, rules.UBTTime = nil, nil, nil
	return &rules
}

// newBackend commits a genesis block holding alloc and the system contracts
// the enabled forks call into (beacon roots, block hash history, request
// queues), so pre- and post-block system calls behave as on a real chain.
func newBackend(alloc types.GenesisAlloc) (*backend, error) {
	genesisAlloc := core.SystemContractAllocs()
	maps.Copy(genesisAlloc, alloc)
	genesis := &core.Genesis{Config: osakaConfig(), GasLimit: blockGasLimit, Alloc: genesisAlloc}

	db := rawdb.NewMemoryDatabase()
	// The hash scheme keeps recent tries as reference-counted nodes in
	// memory, which is exactly a chain that never persists anything; the
	// path scheme would add background flushing for no benefit.
	tdb := triedb.NewDatabase(db, triedb.HashDefaults)
	block, err := genesis.Commit(db, tdb, nil)
	if err != nil {
		return nil, fmt.Errorf("localnet: commit genesis: %w", err)
	}
	head := block.Header()
	return &backend{
		config:  genesis.Config,
		signer:  types.LatestSigner(genesis.Config),
		engine:  beacon.New(ethash.NewFaker()),
		tdb:     tdb,
		sdb:     state.NewMPTDatabase(tdb, state.NewCodeDB(db)),
		headers: []*types.Header{head},
		byHash:  map[common.Hash]*types.Header{head.Hash(): head},
		mined:   make(map[common.Hash]minedTx),
		pending: make(map[common.Address]uint64),
		roots:   []common.Hash{head.Root},
	}, nil
}

// close makes every later read and write fail with ErrClosed. Memory is left
// to the garbage collector: readers still running may hold states open.
func (b *backend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.pool, b.pending = nil, nil
}

// The methods below make backend a core.ChainContext, which the EVM uses to
// resolve BLOCKHASH and go-ethereum's helpers use to build block contexts.

func (b *backend) Config() *params.ChainConfig { return b.config }

func (b *backend) Engine() consensus.Engine { return b.engine }

func (b *backend) CurrentHeader() *types.Header {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.headers[len(b.headers)-1]
}

func (b *backend) GetHeaderByNumber(number uint64) *types.Header {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if number >= uint64(len(b.headers)) {
		return nil
	}
	return b.headers[number]
}

func (b *backend) GetHeaderByHash(hash common.Hash) *types.Header {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.byHash[hash]
}

func (b *backend) GetHeader(hash common.Hash, number uint64) *types.Header {
	if h := b.GetHeaderByHash(hash); h != nil && h.Number.Uint64() == number {
		return h
	}
	return nil
}

// header returns the header of block number, or the head for nil or a
// negative number (the JSON-RPC tags latest, pending and so on all resolve
// to the head of a chain that seals every block at once).
func (b *backend) header(number *big.Int) (*types.Header, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	if number == nil || number.Sign() < 0 {
		return b.headers[len(b.headers)-1], nil
	}
	if !number.IsUint64() || number.Uint64() >= uint64(len(b.headers)) {
		return nil, ethereum.NotFound
	}
	return b.headers[number.Uint64()], nil
}

func (b *backend) headerByHash(hash common.Hash) (*types.Header, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	h, ok := b.byHash[hash]
	if !ok {
		return nil, ethereum.NotFound
	}
	return h, nil
}

// stateAt opens a private copy of the state after block number (see header).
// Only the last keptStates blocks' states are available.
func (b *backend) stateAt(number *big.Int) (*types.Header, *state.StateDB, error) {
	h, err := b.header(number)
	if err != nil {
		return nil, nil, err
	}
	st, err := state.New(h.Root, b.sdb)
	if err != nil {
		return nil, nil, fmt.Errorf("localnet: state of block %d is no longer available: %w", h.Number, err)
	}
	return h, st, nil
}

// receipt returns a copy of a mined transaction's receipt, or
// ethereum.NotFound; the copy keeps callers from editing the chain's record.
func (b *backend) receipt(hash common.Hash) (*types.Receipt, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	m, ok := b.mined[hash]
	if !ok {
		return nil, ethereum.NotFound
	}
	r := *m.receipt
	return &r, nil
}

// transaction finds a transaction among the mined and the pooled ones.
func (b *backend) transaction(hash common.Hash) (tx *types.Transaction, isPending bool, err error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, false, ErrClosed
	}
	if m, ok := b.mined[hash]; ok {
		return m.tx, false, nil
	}
	for _, p := range b.pool {
		if p.tx.Hash() == hash {
			return p.tx, true, nil
		}
	}
	return nil, false, ethereum.NotFound
}

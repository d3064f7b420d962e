package localnet

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/x402-mcp/x402-mcp/localnet/token"
)

const (
	// DefaultMaxClockDrift is used when ChainConfig.MaxClockDrift is not set.
	// x402 clients sign authorizations valid for 60..300 s, so a chain up to a
	// minute ahead still accepts every fresh one.
	DefaultMaxClockDrift = 60 * time.Second
	// DefaultTokenName and DefaultTokenVersion match Circle's USDC deployments,
	// so x402 code that assumes those EIP-712 domain values works unchanged.
	DefaultTokenName    = "USD Coin"
	DefaultTokenVersion = "2"

	// gasHeadroom is added to every estimate: a transaction estimated
	// against the latest block may execute after others in the same block
	// that change which storage slots it finds empty. Unused gas is refunded.
	gasHeadroom = 50_000
	// maxMineAttempts bounds how many blocks a caller waits for a transaction
	// the pool accepted; a valid one lands in the next block, so running out
	// means it is stuck.
	maxMineAttempts = 8
	// maxGather caps how long the miner holds a block for submitters that are
	// still on their way (see Chain.gather), so one slow caller cannot stall
	// everybody else's receipts.
	maxGather = 250 * time.Millisecond
)

var (
	// ErrClosed is returned by calls made after (or racing with) Close.
	ErrClosed = errors.New("localnet: chain closed")
	// ErrTxReverted is wrapped by TransferWithAuthorization when a transaction
	// whose simulation passed still failed on chain, which happens when a
	// concurrent transaction consumed the same authorization or balance.
	ErrTxReverted = errors.New("localnet: transaction reverted")

	// deployerFunds is effectively unlimited native coin for the deployer,
	// which pays for every account NewAccount funds.
	deployerFunds = new(big.Int).Mul(big.NewInt(1_000_000_000), big.NewInt(params.Ether))
	// gasTip is far above the simulated miner's minimum tip, so transactions
	// are never left out of a block for being too cheap.
	gasTip = big.NewInt(params.GWei)
)

// ChainConfig configures NewChain. The zero value is usable.
type ChainConfig struct {
	// MaxClockDrift bounds how far block timestamps may run ahead of
	// wall-clock time. Zero or negative means DefaultMaxClockDrift. Values
	// below one second make the chain produce at most one block per second.
	MaxClockDrift time.Duration
	// TokenName and TokenVersion form the token's EIP-712 domain. Empty means
	// DefaultTokenName / DefaultTokenVersion.
	TokenName, TokenVersion string
	// TokenBalances lists accounts to credit with tokens (atomic units) before
	// NewChain returns, so a network can start with known payers.
	TokenBalances map[common.Address]*big.Int
}

// Authorization is the EIP-3009 TransferWithAuthorization message.
type Authorization struct {
	From, To                       common.Address
	Value, ValidAfter, ValidBefore *big.Int
	Nonce                          [32]byte
}

// RevertError reports that the token contract rejected a call. It is returned
// (possibly wrapped) by SimulateTransferWithAuthorization and
// TransferWithAuthorization, so callers can map Reason onto x402 error codes.
type RevertError struct {
	// Reason is the string the contract passed to require; empty for a
	// revert without a reason.
	Reason string
	// Data is the raw revert payload.
	Data []byte
}

func (e *RevertError) Error() string {
	if e.Reason == "" {
		return "execution reverted"
	}
	return "execution reverted: " + e.Reason
}

// Chain is a simulated EVM chain with the token deployed. All methods are safe
// for concurrent use.
type Chain struct {
	backend *simulated.Backend
	// client is captured once because Backend.Close clears its own copy and
	// calls in flight while closing must not race with that write.
	client    simulated.Client
	chainID   *big.Int
	signer    types.Signer
	token     *token.Token
	tokenAddr common.Address
	tokenName string
	tokenVer  string
	drift     time.Duration

	deployer     *ecdsa.PrivateKey
	deployerAddr common.Address

	sendersMu sync.Mutex
	senders   map[common.Address]*senderState

	// submitting counts calls that are preparing or sending transactions and
	// have not yet asked the miner for a block; idle is poked when it drops
	// to zero. Together they let the miner wait for a burst to arrive in full.
	submitting atomic.Int64
	idle       chan struct{}

	mineReq   chan chan struct{}
	quit      chan struct{}
	minerDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// senderState serialises transaction submission per account. Sending under
// the lock in nonce order keeps every transaction executable the moment it
// reaches the pool, so a burst from one key never leaves nonce gaps.
type senderState struct {
	mu    sync.Mutex
	next  uint64
	known bool
}

// NewChain starts a simulated chain, deploys the token from a freshly
// generated deployer key and mints cfg.TokenBalances. The chain runs until
// Close.
func NewChain(ctx context.Context, cfg ChainConfig) (*Chain, error) {
	if cfg.MaxClockDrift <= 0 {
		cfg.MaxClockDrift = DefaultMaxClockDrift
	}
	if cfg.TokenName == "" {
		cfg.TokenName = DefaultTokenName
	}
	if cfg.TokenVersion == "" {
		cfg.TokenVersion = DefaultTokenVersion
	}
	deployer, err := crypto.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("localnet: generate deployer key: %w", err)
	}
	deployerAddr := crypto.PubkeyToAddress(deployer.PublicKey)
	backend := simulated.NewBackend(types.GenesisAlloc{
		deployerAddr: {Balance: deployerFunds},
	}, osakaRules)
	c := &Chain{
		backend:      backend,
		client:       backend.Client(),
		token:        token.NewToken(),
		tokenName:    cfg.TokenName,
		tokenVer:     cfg.TokenVersion,
		drift:        cfg.MaxClockDrift,
		deployer:     deployer,
		deployerAddr: deployerAddr,
		senders:      make(map[common.Address]*senderState),
		idle:         make(chan struct{}, 1),
		mineReq:      make(chan chan struct{}),
		quit:         make(chan struct{}),
		minerDone:    make(chan struct{}),
	}
	go c.mine()
	if err := c.setup(ctx, cfg); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// osakaRules pins the chain to Osaka. The simulated backend otherwise enables
// every fork go-ethereum knows, including ones still in development (Amsterdam
// with EIP-8037 state-gas metering, Bogota) under which a first storage write
// costs several times more gas, so settlement costs would look nothing like
// those on today's public chains.
func osakaRules(_ *node.Config, ethConf *ethconfig.Config) {
	rules := *ethConf.Genesis.Config
	rules.BPO1Time, rules.BPO2Time, rules.BPO3Time, rules.BPO4Time, rules.BPO5Time = nil, nil, nil, nil, nil
	rules.AmsterdamTime, rules.BogotaTime, rules.UBTTime = nil, nil, nil
	ethConf.Genesis.Config = &rules
}

func (c *Chain) setup(ctx context.Context, cfg ChainConfig) error {
	id, err := c.client.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("localnet: read chain id: %w", err)
	}
	c.chainID = id
	c.signer = types.LatestSignerForChainID(id)

	code, err := hexutil.Decode(token.TokenMetaData.Bin)
	if err != nil {
		return fmt.Errorf("localnet: token bytecode: %w", err)
	}
	done := c.beginSubmit()
	defer done()
	deploy, err := c.send(ctx, c.deployer, nil, nil, append(code, c.token.PackConstructor(c.tokenName, c.tokenVer)...))
	if err != nil {
		return fmt.Errorf("localnet: deploy token: %w", err)
	}
	if err := c.waitAllSucceeded(ctx, []*types.Transaction{deploy}, done); err != nil {
		return fmt.Errorf("localnet: deploy token: %w", err)
	}
	c.tokenAddr = crypto.CreateAddress(c.deployerAddr, deploy.Nonce())

	done = c.beginSubmit()
	defer done()
	var mints []*types.Transaction
	for addr, amount := range cfg.TokenBalances {
		if amount == nil || amount.Sign() <= 0 {
			continue
		}
		mint, err := c.send(ctx, c.deployer, &c.tokenAddr, nil, c.token.PackMint(addr, amount))
		if err != nil {
			return fmt.Errorf("localnet: mint for %s: %w", addr, err)
		}
		mints = append(mints, mint)
	}
	return c.waitAllSucceeded(ctx, mints, done)
}

// ChainID returns the simulated chain's id as reported by the chain itself.
func (c *Chain) ChainID() *big.Int { return new(big.Int).Set(c.chainID) }

// Network returns the CAIP-2 id x402 uses for this chain, e.g. "eip155:1337".
func (c *Chain) Network() string { return "eip155:" + c.chainID.String() }

// TokenAddress returns the deployed token's address (the EIP-712
// verifyingContract).
func (c *Chain) TokenAddress() common.Address { return c.tokenAddr }

// TokenName returns the token's EIP-712 domain name.
func (c *Chain) TokenName() string { return c.tokenName }

// TokenVersion returns the token's EIP-712 domain version.
func (c *Chain) TokenVersion() string { return c.tokenVer }

// MaxClockDrift returns the effective drift bound (after defaulting).
func (c *Chain) MaxClockDrift() time.Duration { return c.drift }

// Client returns an RPC client of the chain. Transactions sent through it
// directly are only mined once something asks the miner; use WaitMined.
func (c *Chain) Client() simulated.Client { return c.client }

// NewAccount creates a random key and, in one block, funds it with eth wei of
// native coin and mints it tokens atomic units. Either amount may be nil or
// zero.
func (c *Chain) NewAccount(ctx context.Context, eth *big.Int, tokens *big.Int) (*ecdsa.PrivateKey, common.Address, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, common.Address{}, fmt.Errorf("localnet: generate key: %w", err)
	}
	addr := crypto.PubkeyToAddress(key.PublicKey)
	done := c.beginSubmit()
	defer done()
	var txs []*types.Transaction
	if eth != nil && eth.Sign() > 0 {
		tx, err := c.send(ctx, c.deployer, &addr, eth, nil)
		if err != nil {
			return nil, common.Address{}, fmt.Errorf("localnet: fund %s: %w", addr, err)
		}
		txs = append(txs, tx)
	}
	if tokens != nil && tokens.Sign() > 0 {
		tx, err := c.send(ctx, c.deployer, &c.tokenAddr, nil, c.token.PackMint(addr, tokens))
		if err != nil {
			return nil, common.Address{}, fmt.Errorf("localnet: mint for %s: %w", addr, err)
		}
		txs = append(txs, tx)
	}
	if err := c.waitAllSucceeded(ctx, txs, done); err != nil {
		return nil, common.Address{}, err
	}
	return key, addr, nil
}

// BalanceOf returns addr's token balance at the latest block.
func (c *Chain) BalanceOf(ctx context.Context, addr common.Address) (*big.Int, error) {
	out, err := c.call(ctx, common.Address{}, c.token.PackBalanceOf(addr))
	if err != nil {
		return nil, err
	}
	return c.token.UnpackBalanceOf(out)
}

// AuthorizationState reports whether from has used (or cancelled) nonce.
func (c *Chain) AuthorizationState(ctx context.Context, from common.Address, nonce [32]byte) (bool, error) {
	out, err := c.call(ctx, common.Address{}, c.token.PackAuthorizationState(from, nonce))
	if err != nil {
		return false, err
	}
	return c.token.UnpackAuthorizationState(out)
}

// DomainSeparator returns the token's EIP-712 domain separator as the
// contract computes it.
func (c *Chain) DomainSeparator(ctx context.Context) ([32]byte, error) {
	out, err := c.call(ctx, common.Address{}, c.token.PackDOMAINSEPARATOR())
	if err != nil {
		return [32]byte{}, err
	}
	return c.token.UnpackDOMAINSEPARATOR(out)
}

// Now returns the latest block's timestamp, the clock authorizations are
// checked against.
func (c *Chain) Now(ctx context.Context) (uint64, error) {
	h, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return 0, err
	}
	return h.Time, nil
}

// SimulateTransferWithAuthorization runs the settlement as an eth_call from
// sender against the latest block. A rejection is returned as a *RevertError.
func (c *Chain) SimulateTransferWithAuthorization(ctx context.Context, sender common.Address, a Authorization, sig []byte) error {
	data, err := c.packTransferWithAuthorization(a, sig)
	if err != nil {
		return err
	}
	_, err = c.call(ctx, sender, data)
	return err
}

// TransferWithAuthorization simulates the settlement, then submits it signed
// by sender and waits until it is mined. A rejection before sending returns a
// *RevertError and sends nothing. If the mined transaction failed anyway, the
// receipt is returned together with an error wrapping ErrTxReverted.
func (c *Chain) TransferWithAuthorization(ctx context.Context, sender *ecdsa.PrivateKey, a Authorization, sig []byte) (*types.Receipt, error) {
	data, err := c.packTransferWithAuthorization(a, sig)
	if err != nil {
		return nil, err
	}
	done := c.beginSubmit()
	defer done()
	if _, err := c.call(ctx, crypto.PubkeyToAddress(sender.PublicKey), data); err != nil {
		return nil, err
	}
	tx, err := c.send(ctx, sender, &c.tokenAddr, nil, data)
	if err != nil {
		return nil, err
	}
	r, err := c.waitMined(ctx, tx.Hash(), done)
	if err != nil {
		return nil, err
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return r, fmt.Errorf("%w: %s in block %d", ErrTxReverted, tx.Hash(), r.BlockNumber)
	}
	return r, nil
}

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

// notFound reports whether a lookup by transaction hash found nothing. Until
// the node's background transaction indexer finishes its initial pass, which
// on a fresh chain can outlast the first blocks, geth answers "indexing in
// progress" instead of null for unknown hashes; mined transactions are
// indexed on insertion, so that answer also means "not mined yet".
func notFound(err error) bool {
	return errors.Is(err, ethereum.NotFound) || strings.Contains(err.Error(), "transaction indexing is in progress")
}

// Close stops the miner and shuts the chain down. Calls waiting for blocks
// return ErrClosed. Close is idempotent.
func (c *Chain) Close() error {
	c.closeOnce.Do(func() {
		close(c.quit)
		// The miner must be gone before the backend is closed: Commit on a
		// closed backend would dereference its cleared beacon.
		<-c.minerDone
		c.closeErr = c.backend.Close()
	})
	return c.closeErr
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

// requestBlock returns once a block has been committed after the call began,
// so any transaction the caller had already handed to the pool is in it.
// requested is called once the miner has taken the request.
func (c *Chain) requestBlock(ctx context.Context, requested func()) error {
	done := make(chan struct{})
	select {
	case c.mineReq <- done:
		requested()
	case <-c.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-c.minerDone:
		// The miner may have quit with our request still batched.
		select {
		case <-done:
			return nil
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mine is the only goroutine that commits blocks. Requests that arrive while
// a block is being built, while the miner waits for the clock, or while other
// submitters are still sending are all served by the next single Commit; that
// keeps the block count, and with it chain time, proportional to elapsed time
// rather than to the number of transactions.
func (c *Chain) mine() {
	defer close(c.minerDone)
	var batch []chan struct{}
	receive := func(done chan struct{}) { batch = append(batch, done) }
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
		c.backend.Commit()
		for _, done := range batch {
			close(done)
		}
		batch = nil
	}
}

// sleep waits for d while still taking requests. It returns false if the
// chain is closing.
func (c *Chain) sleep(d time.Duration, receive func(chan struct{})) bool {
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
func (c *Chain) gather(receive func(chan struct{})) bool {
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
	h, err := c.client.HeaderByNumber(context.Background(), nil)
	if err != nil {
		// Nothing sensible to wait for; Commit will surface a broken chain
		// to the callers through their receipt lookups.
		return 0
	}
	next := time.Unix(int64(h.Time)+1, 0)
	return time.Until(next.Add(-c.drift))
}

func (c *Chain) packTransferWithAuthorization(a Authorization, sig []byte) ([]byte, error) {
	if len(sig) != crypto.SignatureLength {
		return nil, fmt.Errorf("localnet: signature must be %d bytes, got %d", crypto.SignatureLength, len(sig))
	}
	if a.Value == nil || a.ValidAfter == nil || a.ValidBefore == nil {
		return nil, errors.New("localnet: authorization value, validAfter and validBefore are required")
	}
	var r, s [32]byte
	copy(r[:], sig[:32])
	copy(s[:], sig[32:64])
	return c.token.TryPackTransferWithAuthorization(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig[64], r, s)
}

// call runs an eth_call against the token at the latest block and turns a
// revert into a *RevertError.
func (c *Chain) call(ctx context.Context, from common.Address, data []byte) ([]byte, error) {
	out, err := c.client.CallContract(ctx, ethereum.CallMsg{From: from, To: &c.tokenAddr, Data: data}, nil)
	if err != nil {
		return nil, revertError(err)
	}
	return out, nil
}

// revertError extracts the contract's revert payload from an RPC error. The
// payload travels as hex in the JSON-RPC error's data field.
func revertError(err error) error {
	var de rpc.DataError
	if !errors.As(err, &de) {
		return err
	}
	hexData, ok := de.ErrorData().(string)
	if !ok {
		return err
	}
	data, decErr := hexutil.Decode(hexData)
	if decErr != nil {
		return err
	}
	reason, _ := abi.UnpackRevert(data)
	return &RevertError{Reason: reason, Data: data}
}

// send signs and submits a dynamic-fee transaction from key with the next
// nonce of that account. A transaction that would revert is reported as a
// *RevertError by the gas estimate and never sent.
func (c *Chain) send(ctx context.Context, key *ecdsa.PrivateKey, to *common.Address, value *big.Int, data []byte) (*types.Transaction, error) {
	from := crypto.PubkeyToAddress(key.PublicKey)
	// Estimated outside the sender lock: it is the slow part and needs no
	// nonce.
	gas, err := c.client.EstimateGas(ctx, ethereum.CallMsg{From: from, To: to, Value: value, Data: data})
	if err != nil {
		return nil, revertError(err)
	}
	gas += gasHeadroom
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	// Twice the base fee leaves room for several full blocks of base-fee
	// growth before the transaction would become unminable.
	feeCap := new(big.Int).Add(gasTip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	if value == nil {
		value = new(big.Int)
	}

	st := c.sender(from)
	st.mu.Lock()
	defer st.mu.Unlock()
	// A nonce error means the key was also used outside this Chain; one
	// resync from the pool's view repairs that.
	for attempt := 0; ; attempt++ {
		if !st.known {
			n, err := c.client.PendingNonceAt(ctx, from)
			if err != nil {
				return nil, err
			}
			st.next, st.known = n, true
		}
		tx, err := types.SignNewTx(key, c.signer, &types.DynamicFeeTx{
			ChainID:   c.chainID,
			Nonce:     st.next,
			GasTipCap: gasTip,
			GasFeeCap: feeCap,
			Gas:       gas,
			To:        to,
			Value:     value,
			Data:      data,
		})
		if err != nil {
			return nil, err
		}
		if err := c.client.SendTransaction(ctx, tx); err != nil {
			// The pool refused it, so whether the nonce is free is
			// something only the pool knows now.
			st.known = false
			if attempt == 0 && strings.Contains(err.Error(), "nonce") {
				continue
			}
			return nil, err
		}
		st.next++
		return tx, nil
	}
}

func (c *Chain) sender(addr common.Address) *senderState {
	c.sendersMu.Lock()
	defer c.sendersMu.Unlock()
	st, ok := c.senders[addr]
	if !ok {
		st = &senderState{}
		c.senders[addr] = st
	}
	return st
}

// waitAllSucceeded waits for txs (all already sent) and requires each to have
// succeeded; funding and deployment have no business failing.
func (c *Chain) waitAllSucceeded(ctx context.Context, txs []*types.Transaction, requested func()) error {
	defer requested()
	for _, tx := range txs {
		r, err := c.waitMined(ctx, tx.Hash(), requested)
		if err != nil {
			return err
		}
		if r.Status != types.ReceiptStatusSuccessful {
			return fmt.Errorf("%w: %s", ErrTxReverted, tx.Hash())
		}
	}
	return nil
}

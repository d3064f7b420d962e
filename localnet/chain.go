package localnet

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
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
	// Deployer deploys the token; nil means a fresh key. A fixed one gives
	// the token the same address on every chain it starts (the first
	// contract of its deployer).
	Deployer *ecdsa.PrivateKey
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

// ErrorCode and ErrorData make a RevertError reach JSON-RPC clients the way
// geth reports a revert (code 3, payload as hex in the error's data), should
// the chain be served with go-ethereum's rpc package.
func (e *RevertError) ErrorCode() int { return 3 }

// ErrorData returns the revert payload as 0x-prefixed hex.
func (e *RevertError) ErrorData() any { return hexutil.Encode(e.Data) }

// Chain is an in-process EVM chain with the token deployed: go-ethereum's
// state transition over in-memory state, with blocks sealed on demand by a
// single miner goroutine. All methods are safe for concurrent use.
type Chain struct {
	backend   *backend
	client    *ChainClient
	chainID   *big.Int
	signer    types.Signer
	token     *tokenCodec
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

	mineReq   chan chan error
	quit      chan struct{}
	minerDone chan struct{}
	closeOnce sync.Once
}

// NewChain starts a chain, deploys the token from cfg.Deployer (a freshly
// generated key if nil) and mints cfg.TokenBalances. The chain runs until Close.
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
	tok, err := newTokenCodec()
	if err != nil {
		return nil, err
	}
	deployer := cfg.Deployer
	if deployer == nil {
		if deployer, err = crypto.GenerateKey(); err != nil {
			return nil, fmt.Errorf("localnet: generate deployer key: %w", err)
		}
	}
	deployerAddr := crypto.PubkeyToAddress(deployer.PublicKey)
	b, err := newBackend(types.GenesisAlloc{deployerAddr: {Balance: deployerFunds}})
	if err != nil {
		return nil, err
	}
	c := &Chain{
		backend:      b,
		client:       &ChainClient{b: b},
		chainID:      new(big.Int).Set(b.config.ChainID),
		signer:       b.signer,
		token:        tok,
		tokenName:    cfg.TokenName,
		tokenVer:     cfg.TokenVersion,
		drift:        cfg.MaxClockDrift,
		deployer:     deployer,
		deployerAddr: deployerAddr,
		senders:      make(map[common.Address]*senderState),
		idle:         make(chan struct{}, 1),
		mineReq:      make(chan chan error),
		quit:         make(chan struct{}),
		minerDone:    make(chan struct{}),
	}
	go c.mine()
	if err := c.setup(ctx, cfg); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func (c *Chain) setup(ctx context.Context, cfg ChainConfig) error {
	code, err := c.token.deployData(c.tokenName, c.tokenVer)
	if err != nil {
		return fmt.Errorf("localnet: token constructor: %w", err)
	}
	done := c.beginSubmit()
	defer done()
	deploy, err := c.send(ctx, c.deployer, nil, nil, code)
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
		mint, err := c.sendMint(ctx, addr, amount)
		if err != nil {
			return fmt.Errorf("localnet: mint for %s: %w", addr, err)
		}
		mints = append(mints, mint)
	}
	return c.waitAllSucceeded(ctx, mints, done)
}

func (c *Chain) sendMint(ctx context.Context, to common.Address, amount *big.Int) (*types.Transaction, error) {
	data, err := c.token.packMint(to, amount)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, c.deployer, &c.tokenAddr, nil, data)
}

// ChainID returns the chain's id (1337, as for geth's dev chain).
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

// Client returns direct, ethclient-shaped access to the chain. Transactions
// sent through it are only mined once something asks the miner; use
// WaitMined.
func (c *Chain) Client() *ChainClient { return c.client }

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
		tx, err := c.sendMint(ctx, addr, tokens)
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
	data, err := c.token.packBalanceOf(addr)
	if err != nil {
		return nil, err
	}
	out, err := c.call(ctx, common.Address{}, data)
	if err != nil {
		return nil, err
	}
	return unpack[*big.Int](c.token, "balanceOf", out)
}

// AuthorizationState reports whether from has used (or cancelled) nonce.
func (c *Chain) AuthorizationState(ctx context.Context, from common.Address, nonce [32]byte) (bool, error) {
	data, err := c.token.packAuthorizationState(from, nonce)
	if err != nil {
		return false, err
	}
	out, err := c.call(ctx, common.Address{}, data)
	if err != nil {
		return false, err
	}
	return unpack[bool](c.token, "authorizationState", out)
}

// DomainSeparator returns the token's EIP-712 domain separator as the
// contract computes it.
func (c *Chain) DomainSeparator(ctx context.Context) ([32]byte, error) {
	data, err := c.token.packDomainSeparator()
	if err != nil {
		return [32]byte{}, err
	}
	out, err := c.call(ctx, common.Address{}, data)
	if err != nil {
		return [32]byte{}, err
	}
	return unpack[[32]byte](c.token, "DOMAIN_SEPARATOR", out)
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

// Close stops the miner and shuts the chain down. Calls waiting for blocks
// return ErrClosed, as do all later calls. Close is idempotent.
func (c *Chain) Close() error {
	c.closeOnce.Do(func() {
		close(c.quit)
		// The miner must be gone first so no block is half sealed when the
		// backend starts refusing everything.
		<-c.minerDone
		c.backend.close()
	})
	return nil
}

// call runs an eth_call against the token at the latest block; a revert
// comes back as a *RevertError.
func (c *Chain) call(ctx context.Context, from common.Address, data []byte) ([]byte, error) {
	return c.client.CallContract(ctx, ethereum.CallMsg{From: from, To: &c.tokenAddr, Data: data}, nil)
}

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

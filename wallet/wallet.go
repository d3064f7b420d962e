package wallet

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/x402-mcp/x402-mcp/tokens"
)

// rpcTimeout bounds one network's reads.
const rpcTimeout = 10 * time.Second

// Selectors of the two token calls, computed once from their signatures.
var (
	selBalanceOf          = crypto.Keccak256([]byte("balanceOf(address)"))[:4]
	selAuthorizationState = crypto.Keccak256([]byte("authorizationState(address,bytes32)"))[:4]
)

// Network is one network the operator configured, with its RPC endpoint;
// RPCURL empty means none.
type Network struct {
	ID     string // CAIP-2
	RPCURL string
}

// Balance is one token's balance, or why it could not be read.
type Balance struct {
	Network string
	Token   tokens.Token
	// Amount is nil when the balance could not be read.
	Amount *big.Int
	// Problem says why Amount is nil: no RPC configured, or the read failed.
	Problem string
}

// Reader reads balances and authorization state over the configured RPC
// endpoints. Connections are opened lazily and kept.
type Reader struct {
	reg  *tokens.Registry
	nets []Network

	mu      sync.Mutex
	clients map[string]*ethclient.Client
}

// New returns a Reader for the registry's tokens on the given networks.
func New(reg *tokens.Registry, nets []Network) *Reader {
	return &Reader{reg: reg, nets: nets, clients: map[string]*ethclient.Client{}}
}

// Close closes the RPC connections.
func (r *Reader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		c.Close()
	}
	r.clients = map[string]*ethclient.Client{}
}

func (r *Reader) rpcURL(network string) string {
	for _, n := range r.nets {
		if n.ID == network {
			return n.RPCURL
		}
	}
	return ""
}

// client dials the network's RPC endpoint once and checks that it serves
// the chain it is configured for: balances read from the wrong chain would
// mislead.
func (r *Reader) client(ctx context.Context, network string) (*ethclient.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[network]; ok {
		return c, nil
	}
	url := r.rpcURL(network)
	if url == "" {
		return nil, noRPC(network)
	}
	want, err := tokens.ParseNetwork(network)
	if err != nil {
		return nil, err
	}
	c, err := ethclient.DialContext(ctx, url)
	if err != nil {
		return nil, errors.New("cannot connect to the RPC endpoint")
	}
	got, err := c.ChainID(ctx)
	if err != nil {
		c.Close()
		return nil, errors.New("the RPC endpoint did not answer eth_chainId")
	}
	if got.Cmp(want) != 0 {
		c.Close()
		return nil, fmt.Errorf("the RPC endpoint serves chain %s, not %s", got, want)
	}
	r.clients[network] = c
	return c, nil
}

// ErrNoRPC is the problem of a network without an RPC endpoint.
var ErrNoRPC = errors.New("no RPC endpoint is configured for this network")

// noRPC says which config key gives network an RPC endpoint.
func noRPC(network string) error {
	hint := fmt.Sprintf(`add [[networks]] with id = %q and rpc_url = "https://…" to the config`, network)
	if id, err := tokens.ParseNetwork(network); err == nil {
		hint += fmt.Sprintf(", or set X402_MCP_RPC_%s", id)
	}
	return fmt.Errorf("%w; %s", ErrNoRPC, hint)
}

// Balances reads payer's balance of every registry token on each
// configured network, plus a plain statement for each network in extra
// (e.g. the policy's allowed networks) that has no RPC endpoint.
func (r *Reader) Balances(ctx context.Context, payer common.Address, extra []string) []Balance {
	networks := map[string]bool{}
	for _, n := range r.nets {
		networks[n.ID] = true
	}
	for _, n := range extra {
		networks[n] = true
	}
	var ids []string
	for n := range networks {
		ids = append(ids, n)
	}
	sort.Strings(ids)

	var out []Balance
	for _, network := range ids {
		toks := r.tokensOn(network)
		if len(toks) == 0 {
			out = append(out, Balance{Network: network, Problem: "no token in the registry for this network"})
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		c, cerr := r.client(ctx, network)
		for _, t := range toks {
			b := Balance{Network: network, Token: t}
			if cerr != nil {
				b.Problem = cerr.Error()
			} else if amount, err := balanceOf(ctx, c, t.Address, payer); err != nil {
				b.Problem = "reading balanceOf failed: " + err.Error()
			} else {
				b.Amount = amount
			}
			out = append(out, b)
		}
		cancel()
	}
	return out
}

func (r *Reader) tokensOn(network string) []tokens.Token {
	var out []tokens.Token
	for _, t := range r.reg.All() {
		if t.Network == network {
			out = append(out, t)
		}
	}
	return out
}

func balanceOf(ctx context.Context, c *ethclient.Client, token, owner common.Address) (*big.Int, error) {
	data := append(append([]byte{}, selBalanceOf...), common.LeftPadBytes(owner.Bytes(), 32)...)
	res, err := c.CallContract(ctx, ethereum.CallMsg{To: &token, Data: data}, nil)
	if err != nil {
		return nil, errors.New("the call failed")
	}
	if len(res) != 32 {
		return nil, fmt.Errorf("the token answered %d bytes, not 32", len(res))
	}
	return new(big.Int).SetBytes(res), nil
}

// AuthorizationState reports whether payer's authorization with nonce was
// used on the token as of the newest block: ok is false when this network
// has no RPC endpoint. With FinalizedAuthorizationState and
// TransactionUsedAuthorization it makes a Reader a ledger.Chain, so the
// ledger can resolve payments whose outcome is unknown.
func (r *Reader) AuthorizationState(ctx context.Context, network string, asset, payer common.Address, nonce [32]byte) (used bool, ok bool, err error) {
	if r.rpcURL(network) == "" {
		return false, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	c, err := r.client(ctx, network)
	if err != nil {
		return false, false, err
	}
	used, err = authorizationState(ctx, c, asset, payer, nonce, nil)
	return used, err == nil, err
}

// FinalizedAuthorizationState is AuthorizationState as of the newest
// finalized block, with that block's timestamp (unix seconds). Unused there
// and a timestamp at or past the authorization's validBefore prove it can
// never be used: blocks after it are later still, and it cannot be
// reorganised away. A node that does not report finality gives an error.
func (r *Reader) FinalizedAuthorizationState(ctx context.Context, network string, asset, payer common.Address, nonce [32]byte) (used bool, blockTime int64, ok bool, err error) {
	if r.rpcURL(network) == "" {
		return false, 0, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	c, err := r.client(ctx, network)
	if err != nil {
		return false, 0, false, err
	}
	h, err := c.HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
	if err != nil || h == nil || h.Number == nil {
		return false, 0, false, errors.New("the RPC endpoint did not give its finalized block")
	}
	if h.Time > math.MaxInt64 {
		return false, 0, false, errors.New("the finalized block's timestamp is out of range")
	}
	used, err = authorizationState(ctx, c, asset, payer, nonce, h.Number)
	if err != nil {
		return false, 0, false, err
	}
	return used, int64(h.Time), true, nil
}

// authorizationState calls the token's authorizationState(payer, nonce) at
// block (nil: the newest).
func authorizationState(ctx context.Context, c *ethclient.Client, asset, payer common.Address, nonce [32]byte, block *big.Int) (bool, error) {
	data := append(append([]byte{}, selAuthorizationState...), common.LeftPadBytes(payer.Bytes(), 32)...)
	data = append(data, nonce[:]...)
	res, err := c.CallContract(ctx, ethereum.CallMsg{To: &asset, Data: data}, block)
	if err != nil {
		return false, errors.New("authorizationState call failed")
	}
	if len(res) != 32 {
		return false, fmt.Errorf("authorizationState answered %d bytes, not 32", len(res))
	}
	return new(big.Int).SetBytes(res).Sign() != 0, nil
}

// TxStatus is what the chain says about a transaction.
type TxStatus int

const (
	// TxNotFound: the node has no receipt for it: it is unknown to the
	// node, or not mined yet.
	TxNotFound TxStatus = iota
	// TxSucceeded: mined, and it succeeded.
	TxSucceeded
	// TxReverted: mined, and it reverted: it moved nothing.
	TxReverted
)

func (s TxStatus) String() string {
	switch s {
	case TxSucceeded:
		return "succeeded"
	case TxReverted:
		return "reverted"
	}
	return "not found"
}

// Receipt is a transaction's status and, when it succeeded, the EIP-3009
// authorizations it used.
type Receipt struct {
	Status TxStatus
	// Block is the block it was mined in; 0 when not found.
	Block uint64
	used  []usedAuthorization
}

type usedAuthorization struct {
	token, authorizer common.Address
	nonce             common.Hash
}

// UsedAuthorization reports whether the transaction succeeded and the token
// at asset logged AuthorizationUsed(payer, nonce): it is the transfer that
// settled that authorization.
func (rc Receipt) UsedAuthorization(asset, payer common.Address, nonce [32]byte) bool {
	if rc.Status != TxSucceeded {
		return false
	}
	want := usedAuthorization{asset, payer, common.Hash(nonce)}
	for _, u := range rc.used {
		if u == want {
			return true
		}
	}
	return false
}

// topicAuthorizationUsed is the EIP-3009 event
// AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce).
var topicAuthorizationUsed = crypto.Keccak256Hash([]byte("AuthorizationUsed(address,bytes32)"))

// TransactionStatus looks up the receipt of transaction tx (0x and 64 hex
// digits) on network: ok is false when the network has no RPC endpoint.
func (r *Reader) TransactionStatus(ctx context.Context, network, tx string) (Receipt, bool, error) {
	if r.rpcURL(network) == "" {
		return Receipt{}, false, nil
	}
	h, err := hex.DecodeString(trim0x(tx))
	if err != nil || len(h) != 32 || len(tx) != 66 {
		return Receipt{}, false, errors.New("malformed transaction hash")
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	c, err := r.client(ctx, network)
	if err != nil {
		return Receipt{}, false, err
	}
	rc, err := c.TransactionReceipt(ctx, common.BytesToHash(h))
	if errors.Is(err, ethereum.NotFound) {
		return Receipt{Status: TxNotFound}, true, nil
	}
	if err != nil || rc == nil || rc.BlockNumber == nil {
		return Receipt{}, false, errors.New("reading the transaction receipt failed")
	}
	out := Receipt{Status: TxReverted, Block: rc.BlockNumber.Uint64()}
	if rc.Status != types.ReceiptStatusSuccessful {
		return out, true, nil
	}
	out.Status = TxSucceeded
	for _, l := range rc.Logs {
		if len(l.Topics) == 3 && l.Topics[0] == topicAuthorizationUsed {
			out.used = append(out.used, usedAuthorization{l.Address, common.BytesToAddress(l.Topics[1].Bytes()), l.Topics[2]})
		}
	}
	return out, true, nil
}

// TransactionUsedAuthorization reports whether transaction tx succeeded and
// used payer's authorization nonce on asset (see Receipt.UsedAuthorization):
// ok is false when the network has no RPC endpoint.
func (r *Reader) TransactionUsedAuthorization(ctx context.Context, network, tx string, asset, payer common.Address, nonce [32]byte) (used, ok bool, err error) {
	rc, ok, err := r.TransactionStatus(ctx, network, tx)
	if err != nil || !ok {
		return false, ok, err
	}
	return rc.UsedAuthorization(asset, payer, nonce), true, nil
}

func trim0x(s string) string {
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return s[2:]
	}
	return s
}

package localnet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

const (
	// maxRPCRequestBytes bounds one JSON-RPC request body (geth allows 5 MiB).
	// The largest thing a client sends is a raw transaction, which geth's
	// own pool caps at 128 KiB; a batch of a few dozen fits too.
	maxRPCRequestBytes = 1 << 20
	// maxRPCBatchItems and maxRPCBatchResponseBytes bound a batch, so one
	// request cannot make the server build an unbounded response (a batch
	// of full blocks, say).
	maxRPCBatchItems         = 100
	maxRPCBatchResponseBytes = 16 << 20
)

// errHeaderNotFound is what geth answers for a block it does not have;
// clients match on the text.
var errHeaderNotFound = errors.New("header not found")

// chainRPC serves a Chain over JSON-RPC with go-ethereum's own rpc server,
// so ethclient (and wallets) talk to the local chain exactly as they would
// to a node. It adds no state of its own beyond the goroutine that mines
// transactions sent over RPC: everything else is a call on ChainClient.
type chainRPC struct {
	server    *rpc.Server
	stopMiner context.CancelFunc
	minerDone chan struct{}
}

func newChainRPC(c *Chain) (*chainRPC, error) {
	srv := rpc.NewServer()
	srv.SetHTTPBodyLimit(maxRPCRequestBytes)
	srv.SetBatchLimits(maxRPCBatchItems, maxRPCBatchResponseBytes)
	eth := &ethAPI{chain: c, sent: make(chan struct{}, 1)}
	for name, svc := range map[string]any{
		"eth":  eth,
		"net":  netAPI{version: c.chainID.String()},
		"web3": web3API{},
	} {
		if err := srv.RegisterName(name, svc); err != nil {
			return nil, fmt.Errorf("localnet: register rpc namespace %s: %w", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &chainRPC{server: srv, stopMiner: cancel, minerDone: make(chan struct{})}
	go func() {
		defer close(r.minerDone)
		eth.mineSent(ctx)
	}()
	return r, nil
}

// ServeHTTP serves JSON-RPC over HTTP to requests addressed to a loopback
// host. Checking Host is what geth does by default (--http.vhosts
// localhost): a web page cannot reach a loopback server under its own
// origin unless it rebinds its DNS name to 127.0.0.1, and then the Host
// header still carries its name.
func (r *chainRPC) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !loopbackHost(req.Host) {
		http.Error(w, "invalid host specified", http.StatusForbidden)
		return
	}
	r.server.ServeHTTP(w, req)
}

// stop ends the rpc server's codecs and the mining goroutine. The HTTP
// server in front of it is shut down by the Network.
func (r *chainRPC) stop() {
	r.server.Stop()
	r.stopMiner()
	<-r.minerDone
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ethAPI is the eth namespace. Exported methods are JSON-RPC methods (the
// rpc package lowercases the first letter: ChainId is eth_chainId); they
// follow geth's internal/ethapi in names, arguments and result shapes.
type ethAPI struct {
	chain *Chain
	// sent is poked after a transaction arrives over RPC; see mineSent.
	sent chan struct{}
}

// mineSent asks the miner for blocks while transactions sent over RPC wait
// in the pool. The chain only seals when asked, and a wallet that sends a
// transaction never asks, so without this its transaction would wait
// forever. One goroutine that coalesces the pokes keeps the number of block
// requests independent of the number of transactions.
func (e *ethAPI) mineSent(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.sent:
		}
		// A block holds at most its gas limit, so a burst may need several.
		for e.chain.backend.pooled() > 0 {
			if err := e.chain.requestBlock(ctx, func() {}); err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrClosed) {
					return
				}
				break // a sealing error; the next transaction will try again
			}
		}
	}
}

// ChainId is eth_chainId.
func (e *ethAPI) ChainId(ctx context.Context) (*hexutil.Big, error) {
	id, err := e.chain.client.ChainID(ctx)
	return (*hexutil.Big)(id), err
}

// BlockNumber is eth_blockNumber.
func (e *ethAPI) BlockNumber(ctx context.Context) (hexutil.Uint64, error) {
	n, err := e.chain.client.BlockNumber(ctx)
	return hexutil.Uint64(n), err
}

// Syncing is eth_syncing: an in-process chain is never behind.
func (e *ethAPI) Syncing() bool { return false }

// GetBalance is eth_getBalance.
func (e *ethAPI) GetBalance(ctx context.Context, addr common.Address, block *rpc.BlockNumberOrHash) (*hexutil.Big, error) {
	number, err := e.blockNumber(ctx, block)
	if err != nil {
		return nil, err
	}
	bal, err := e.chain.client.BalanceAt(ctx, addr, number)
	return (*hexutil.Big)(bal), rpcError(err)
}

// GetCode is eth_getCode.
func (e *ethAPI) GetCode(ctx context.Context, addr common.Address, block *rpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	number, err := e.blockNumber(ctx, block)
	if err != nil {
		return nil, err
	}
	code, err := e.chain.client.CodeAt(ctx, addr, number)
	return code, rpcError(err)
}

// GetTransactionCount is eth_getTransactionCount. For "pending" it counts
// the sender's pooled transactions, which is how a wallet picks the nonce
// of its next one.
func (e *ethAPI) GetTransactionCount(ctx context.Context, addr common.Address, block *rpc.BlockNumberOrHash) (hexutil.Uint64, error) {
	if block != nil {
		if n, ok := block.Number(); ok && n == rpc.PendingBlockNumber {
			nonce, err := e.chain.client.PendingNonceAt(ctx, addr)
			return hexutil.Uint64(nonce), err
		}
	}
	number, err := e.blockNumber(ctx, block)
	if err != nil {
		return 0, err
	}
	nonce, err := e.chain.client.NonceAt(ctx, addr, number)
	return hexutil.Uint64(nonce), rpcError(err)
}

// Call is eth_call. A revert comes back as a *RevertError, which the rpc
// package reports with its ErrorCode (3) and ErrorData (the payload), as
// geth does; ethclient and bind then surface the reason.
func (e *ethAPI) Call(ctx context.Context, args callArgs, block *rpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	msg, err := args.message()
	if err != nil {
		return nil, err
	}
	number, err := e.blockNumber(ctx, block)
	if err != nil {
		return nil, err
	}
	out, err := e.chain.client.CallContract(ctx, msg, number)
	return out, rpcError(err)
}

// EstimateGas is eth_estimateGas. The chain estimates against its head
// only, which is also what every client asks for.
func (e *ethAPI) EstimateGas(ctx context.Context, args callArgs, block *rpc.BlockNumberOrHash) (hexutil.Uint64, error) {
	msg, err := args.message()
	if err != nil {
		return 0, err
	}
	number, err := e.blockNumber(ctx, block)
	if err != nil {
		return 0, err
	}
	if number != nil {
		head, err := e.chain.client.BlockNumber(ctx)
		if err != nil {
			return 0, err
		}
		if number.Cmp(new(big.Int).SetUint64(head)) != 0 {
			return 0, errors.New("localnet estimates gas at the latest block only")
		}
	}
	gas, err := e.chain.client.EstimateGas(ctx, msg)
	return hexutil.Uint64(gas), rpcError(err)
}

// GasPrice is eth_gasPrice: the tip the chain's own transactions pay plus
// the next block's base fee, the sum geth suggests too.
func (e *ethAPI) GasPrice(ctx context.Context) (*hexutil.Big, error) {
	head, err := e.chain.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	price := new(big.Int).Add(gasTip, eip1559.CalcBaseFee(e.chain.backend.config, head))
	return (*hexutil.Big)(price), nil
}

// MaxPriorityFeePerGas is eth_maxPriorityFeePerGas. The miner includes any
// valid transaction whatever its tip; this is what the chain's own pay.
func (e *ethAPI) MaxPriorityFeePerGas() *hexutil.Big {
	return (*hexutil.Big)(new(big.Int).Set(gasTip))
}

// SendRawTransaction is eth_sendRawTransaction: the transaction is checked
// and pooled like on a node, and the miner is asked for a block. It returns
// at once; the receipt appears once the block is sealed, within about a
// second.
func (e *ethAPI) SendRawTransaction(ctx context.Context, input hexutil.Bytes) (common.Hash, error) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(input); err != nil {
		return common.Hash{}, err
	}
	if err := e.chain.client.SendTransaction(ctx, tx); err != nil {
		return common.Hash{}, err
	}
	select {
	case e.sent <- struct{}{}:
	default: // a block request is already due
	}
	return tx.Hash(), nil
}

// GetTransactionReceipt is eth_getTransactionReceipt; null while the
// transaction is pending or unknown.
func (e *ethAPI) GetTransactionReceipt(ctx context.Context, hash common.Hash) (map[string]any, error) {
	r, err := e.chain.client.TransactionReceipt(ctx, hash)
	if errors.Is(err, ethereum.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tx, _, err := e.chain.client.TransactionByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	return marshalReceipt(r, tx, e.chain.signer), nil
}

// GetTransactionByHash is eth_getTransactionByHash; null when unknown.
func (e *ethAPI) GetTransactionByHash(ctx context.Context, hash common.Hash) (map[string]any, error) {
	tx, pending, err := e.chain.client.TransactionByHash(ctx, hash)
	if errors.Is(err, ethereum.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if pending {
		return marshalTx(tx, e.chain.signer, nil, 0)
	}
	r, err := e.chain.client.TransactionReceipt(ctx, hash)
	if err != nil {
		return nil, err
	}
	h, err := e.chain.client.HeaderByHash(ctx, r.BlockHash)
	if err != nil {
		return nil, err
	}
	return marshalTx(tx, e.chain.signer, h, r.TransactionIndex)
}

// GetBlockByNumber is eth_getBlockByNumber; null when there is no such
// block. "pending", "safe" and "finalized" are the head: the chain seals a
// block as soon as it is asked for one, and nothing ever reorganises it.
func (e *ethAPI) GetBlockByNumber(ctx context.Context, number rpc.BlockNumber, fullTx bool) (map[string]any, error) {
	h, err := e.chain.client.HeaderByNumber(ctx, blockNumberArg(number))
	if errors.Is(err, ethereum.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.marshalBlock(h, fullTx)
}

// GetBlockByHash is eth_getBlockByHash; null when unknown.
func (e *ethAPI) GetBlockByHash(ctx context.Context, hash common.Hash, fullTx bool) (map[string]any, error) {
	h, err := e.chain.client.HeaderByHash(ctx, hash)
	if errors.Is(err, ethereum.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.marshalBlock(h, fullTx)
}

// blockNumber resolves a block argument to what ChainClient takes: nil for
// the head (no argument, or any tag but "earliest").
func (e *ethAPI) blockNumber(ctx context.Context, block *rpc.BlockNumberOrHash) (*big.Int, error) {
	if block == nil {
		return nil, nil
	}
	if hash, ok := block.Hash(); ok {
		h, err := e.chain.client.HeaderByHash(ctx, hash)
		if errors.Is(err, ethereum.NotFound) {
			return nil, fmt.Errorf("header for hash %s not found", hash)
		}
		if err != nil {
			return nil, err
		}
		return h.Number, nil
	}
	n, _ := block.Number()
	return blockNumberArg(n), nil
}

func blockNumberArg(n rpc.BlockNumber) *big.Int {
	switch {
	case n == rpc.EarliestBlockNumber:
		return new(big.Int)
	case n < 0:
		return nil
	default:
		return big.NewInt(n.Int64())
	}
}

// rpcError gives a missing block geth's wording.
func rpcError(err error) error {
	if errors.Is(err, ethereum.NotFound) {
		return errHeaderNotFound
	}
	return err
}

// callArgs is the call object of eth_call and eth_estimateGas (geth's
// TransactionArgs, less what the chain cannot run). Unknown fields such as
// nonce or chainId are ignored, as geth does for calls.
type callArgs struct {
	From                 *common.Address   `json:"from"`
	To                   *common.Address   `json:"to"`
	Gas                  *hexutil.Uint64   `json:"gas"`
	GasPrice             *hexutil.Big      `json:"gasPrice"`
	MaxFeePerGas         *hexutil.Big      `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *hexutil.Big      `json:"maxPriorityFeePerGas"`
	Value                *hexutil.Big      `json:"value"`
	Data                 *hexutil.Bytes    `json:"data"`
	Input                *hexutil.Bytes    `json:"input"`
	AccessList           *types.AccessList `json:"accessList"`
	// Refused rather than ignored: running the call without them would
	// answer a different question than the one asked.
	BlobHashes        []common.Hash                `json:"blobVersionedHashes"`
	AuthorizationList []types.SetCodeAuthorization `json:"authorizationList"`
}

func (a *callArgs) message() (ethereum.CallMsg, error) {
	var msg ethereum.CallMsg
	if len(a.BlobHashes) > 0 {
		return msg, errors.New("localnet: blob transactions are not supported")
	}
	if len(a.AuthorizationList) > 0 {
		return msg, errors.New("localnet: set-code authorizations are not supported in calls")
	}
	if a.Data != nil && a.Input != nil && !slices.Equal(*a.Data, *a.Input) {
		return msg, errors.New(`both "data" and "input" are set and not equal. Please use "input" to pass transaction call data`)
	}
	if a.GasPrice != nil && (a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil) {
		return msg, errors.New("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
	}
	if a.From != nil {
		msg.From = *a.From
	}
	msg.To = a.To
	if a.Gas != nil {
		// Bounded by the block gas limit like geth's --rpc.gascap, so a
		// call from outside cannot ask for an unbounded execution.
		msg.Gas = min(uint64(*a.Gas), blockGasLimit)
	}
	msg.GasPrice = a.GasPrice.ToInt()
	msg.GasFeeCap = a.MaxFeePerGas.ToInt()
	msg.GasTipCap = a.MaxPriorityFeePerGas.ToInt()
	msg.Value = a.Value.ToInt()
	switch {
	case a.Input != nil:
		msg.Data = *a.Input
	case a.Data != nil:
		msg.Data = *a.Data
	}
	if a.AccessList != nil {
		msg.AccessList = *a.AccessList
	}
	return msg, nil
}

// marshalBlock renders a block as geth does: the header fields, plus its
// size, its transactions (hashes or full objects), no uncles and the empty
// withdrawal list every block of this chain carries.
func (e *ethAPI) marshalBlock(h *types.Header, fullTx bool) (map[string]any, error) {
	txs, err := e.chain.backend.blockTransactions(h)
	if err != nil {
		return nil, err
	}
	body := types.Body{Transactions: txs}
	if h.WithdrawalsHash != nil {
		body.Withdrawals = []*types.Withdrawal{}
	}
	block := types.NewBlockWithHeader(h).WithBody(body)
	fields, err := jsonFields(h)
	if err != nil {
		return nil, err
	}
	// The header's own JSON writes null for fields of forks the chain does
	// not run; geth leaves them out, and so do we.
	for k, v := range fields {
		if string(v.(json.RawMessage)) == "null" {
			delete(fields, k)
		}
	}
	fields["size"] = hexutil.Uint64(block.Size())
	fields["uncles"] = []common.Hash{}
	if body.Withdrawals != nil {
		fields["withdrawals"] = body.Withdrawals
	}
	list := make([]any, len(txs))
	for i, tx := range txs {
		if !fullTx {
			list[i] = tx.Hash()
			continue
		}
		if list[i], err = marshalTx(tx, e.chain.signer, h, uint(i)); err != nil {
			return nil, err
		}
	}
	fields["transactions"] = list
	return fields, nil
}

// marshalTx renders a transaction as geth's RPCTransaction: the
// transaction's own JSON (every type's fields, and its hash) plus the
// sender and, once mined (h is its block), where it was mined and the gas
// price it paid. A pending transaction has null block fields, which is how
// clients tell it is pending.
func marshalTx(tx *types.Transaction, signer types.Signer, h *types.Header, index uint) (map[string]any, error) {
	fields, err := jsonFields(tx)
	if err != nil {
		return nil, err
	}
	from, err := types.Sender(signer, tx)
	if err != nil {
		return nil, err
	}
	fields["from"] = from
	fields["blockHash"], fields["blockNumber"], fields["blockTimestamp"], fields["transactionIndex"] = nil, nil, nil, nil
	if h != nil {
		fields["blockHash"] = h.Hash()
		fields["blockNumber"] = (*hexutil.Big)(h.Number)
		fields["blockTimestamp"] = hexutil.Uint64(h.Time)
		fields["transactionIndex"] = hexutil.Uint64(index)
	}
	if tx.Type() != types.LegacyTxType && tx.Type() != types.AccessListTxType {
		// Fee-market transactions have no gasPrice of their own: geth
		// reports what was paid once mined, the fee cap before.
		price := tx.GasFeeCap()
		if h != nil && h.BaseFee != nil {
			price = tx.EffectiveGasTipValue(h.BaseFee)
			price.Add(price, h.BaseFee)
		}
		fields["gasPrice"] = (*hexutil.Big)(price)
	}
	return fields, nil
}

// marshalReceipt renders a receipt as geth's eth_getTransactionReceipt
// does, sender and recipient included.
func marshalReceipt(r *types.Receipt, tx *types.Transaction, signer types.Signer) map[string]any {
	from, _ := types.Sender(signer, tx)
	logs := r.Logs
	if logs == nil {
		logs = []*types.Log{} // ethclient requires the field
	}
	fields := map[string]any{
		"blockHash":         r.BlockHash,
		"blockNumber":       (*hexutil.Big)(r.BlockNumber),
		"transactionHash":   r.TxHash,
		"transactionIndex":  hexutil.Uint64(r.TransactionIndex),
		"from":              from,
		"to":                tx.To(),
		"gasUsed":           hexutil.Uint64(r.GasUsed),
		"cumulativeGasUsed": hexutil.Uint64(r.CumulativeGasUsed),
		"contractAddress":   nil,
		"logs":              logs,
		"logsBloom":         r.Bloom,
		"type":              hexutil.Uint(tx.Type()),
		"effectiveGasPrice": (*hexutil.Big)(r.EffectiveGasPrice),
		"status":            hexutil.Uint(r.Status),
	}
	if r.ContractAddress != (common.Address{}) {
		fields["contractAddress"] = r.ContractAddress
	}
	return fields
}

// jsonFields is v's JSON object as a map, so fields can be added while
// every field go-ethereum's own marshaller writes is kept.
func jsonFields(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	fields := make(map[string]any, len(raw)+8)
	for k, v := range raw {
		fields[k] = v
	}
	return fields, nil
}

// netAPI is the net namespace: net_version is the chain id in decimal.
type netAPI struct{ version string }

// Version is net_version.
func (n netAPI) Version() string { return n.version }

// Listening is net_listening.
func (netAPI) Listening() bool { return true }

// web3API is the web3 namespace, for clients that identify the node.
type web3API struct{}

// ClientVersion is web3_clientVersion.
func (web3API) ClientVersion() string { return "x402-mcp-localnet" }

// pooled counts the transactions waiting for a block.
func (b *backend) pooled() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.pool)
}

// blockTransactions returns the transactions of the block with header h, in
// block order. The backend indexes transactions by hash only, so this scans
// every mined one; a local chain mines thousands, not millions, and the
// common reads (receipts, balances) never come here.
func (b *backend) blockTransactions(h *types.Header) ([]*types.Transaction, error) {
	if h.TxHash == types.EmptyTxsHash {
		return nil, nil
	}
	hash := h.Hash()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	var found []minedTx
	for _, m := range b.mined {
		if m.receipt.BlockHash == hash {
			found = append(found, m)
		}
	}
	slices.SortFunc(found, func(a, b minedTx) int {
		return cmp.Compare(a.receipt.TransactionIndex, b.receipt.TransactionIndex)
	})
	txs := make([]*types.Transaction, len(found))
	for i, m := range found {
		txs[i] = m.tx
	}
	return txs, nil
}

package localnet_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/localnet/token"
)

// startRPCNetwork starts a network serving JSON-RPC; it stops when the test
// ends.
func startRPCNetwork(t testing.TB) *localnet.Network {
	t.Helper()
	n, err := localnet.Start(testCtx(t), localnet.NetworkConfig{RPC: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if !strings.HasPrefix(n.RPCURL, "http://127.0.0.1:") {
		t.Fatalf("RPCURL = %q", n.RPCURL)
	}
	return n
}

func dial(t testing.TB, url string) *ethclient.Client {
	t.Helper()
	ec, err := ethclient.Dial(url)
	if err != nil {
		t.Fatalf("ethclient.Dial(%s): %v", url, err)
	}
	t.Cleanup(ec.Close)
	return ec
}

// TestRPCReads reads the chain through go-ethereum's ethclient and the
// generated token bindings, and compares with what Chain reads directly.
func TestRPCReads(t *testing.T) {
	t.Parallel()
	n := startRPCNetwork(t)
	ctx := testCtx(t)
	ec := dial(t, n.RPCURL)
	_, addr := newAccount(t, n.Chain, oneEth, usdc100)

	id, err := ec.ChainID(ctx)
	if err != nil || id.Cmp(n.Chain.ChainID()) != 0 {
		t.Fatalf("ChainID = %v, %v; want %v", id, err, n.Chain.ChainID())
	}
	if bal, err := ec.BalanceAt(ctx, addr, nil); err != nil || bal.Cmp(oneEth) != 0 {
		t.Fatalf("BalanceAt = %v, %v; want %v", bal, err, oneEth)
	}
	if bal, err := ec.PendingBalanceAt(ctx, addr); err != nil || bal.Cmp(oneEth) != 0 {
		t.Fatalf("PendingBalanceAt = %v, %v; want %v", bal, err, oneEth)
	}
	if code, err := ec.CodeAt(ctx, n.Chain.TokenAddress(), nil); err != nil || len(code) == 0 {
		t.Fatalf("CodeAt(token) = %d bytes, %v", len(code), err)
	}

	tok := token.NewToken()
	inst := tok.Instance(ec, n.Chain.TokenAddress())
	got, err := bind.Call(inst, &bind.CallOpts{Context: ctx}, tok.PackBalanceOf(addr), tok.UnpackBalanceOf)
	if err != nil {
		t.Fatalf("balanceOf over RPC: %v", err)
	}
	if want := balance(t, n.Chain, addr); got.Cmp(want) != 0 || got.Cmp(usdc100) != 0 {
		t.Fatalf("balanceOf over RPC = %v, Chain.BalanceOf = %v; want %v", got, want, usdc100)
	}

	// Old blocks stay readable by number and by hash: before the account
	// was funded it had nothing.
	head, err := ec.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatalf("HeaderByNumber(latest): %v", err)
	}
	before := new(big.Int).Sub(head.Number, big.NewInt(1))
	if bal, err := ec.BalanceAt(ctx, addr, before); err != nil || bal.Sign() != 0 {
		t.Fatalf("BalanceAt(block %v) = %v, %v; want 0", before, bal, err)
	}
	if bal, err := ec.BalanceAtHash(ctx, addr, head.Hash()); err != nil || bal.Cmp(oneEth) != 0 {
		t.Fatalf("BalanceAtHash(head) = %v, %v; want %v", bal, err, oneEth)
	}
	if _, err := ec.BalanceAt(ctx, addr, new(big.Int).Add(head.Number, big.NewInt(100))); err == nil ||
		!strings.Contains(err.Error(), "header not found") {
		t.Fatalf("BalanceAt(future block): err = %v, want header not found", err)
	}
	if _, err := ec.HeaderByNumber(ctx, new(big.Int).Add(head.Number, big.NewInt(100))); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("HeaderByNumber(future block): err = %v, want NotFound", err)
	}
	genesis, err := ec.BlockByNumber(ctx, big.NewInt(0))
	if err != nil || genesis.NumberU64() != 0 || len(genesis.Transactions()) != 0 {
		t.Fatalf("BlockByNumber(0) = %v, %v", genesis, err)
	}

	// The tags every client sends, and the other namespaces.
	rc := ec.Client()
	for _, tag := range []string{"latest", "pending", "safe", "finalized", "earliest"} {
		var h *types.Header
		if err := rc.CallContext(ctx, &h, "eth_getBlockByNumber", tag, false); err != nil || h == nil {
			t.Errorf("eth_getBlockByNumber(%s) = %v, %v", tag, h, err)
		}
	}
	var version string
	if err := rc.CallContext(ctx, &version, "net_version"); err != nil || version != n.Chain.ChainID().String() {
		t.Errorf("net_version = %q, %v", version, err)
	}
	if tip, err := ec.SuggestGasTipCap(ctx); err != nil || tip.Sign() <= 0 {
		t.Errorf("SuggestGasTipCap = %v, %v", tip, err)
	}
	if price, err := ec.SuggestGasPrice(ctx); err != nil || price.Cmp(head.BaseFee) <= 0 {
		t.Errorf("SuggestGasPrice = %v, %v; want above the base fee %v", price, err, head.BaseFee)
	}
}

// TestRPCTransfer sends a token transfer the way a wallet does: nonce, fees
// and gas from the node, a signed raw transaction, then polling for the
// receipt. Nothing but the transaction asks the miner for a block.
func TestRPCTransfer(t *testing.T) {
	t.Parallel()
	n := startRPCNetwork(t)
	ctx := testCtx(t)
	ec := dial(t, n.RPCURL)
	key, from := newAccount(t, n.Chain, oneEth, usdc100)
	to := common.Address{0x42}
	amount := big.NewInt(2_500_000)

	tok := token.NewToken()
	inst := tok.Instance(ec, n.Chain.TokenAddress())
	opts := bind.NewKeyedTransactor(key, n.Chain.ChainID())
	opts.Context = ctx
	tx, err := bind.Transact(inst, opts, tok.PackTransfer(to, amount))
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	receipt, err := bind.WaitMined(ctx, ec, tx.Hash())
	if err != nil {
		t.Fatalf("WaitMined: %v", err)
	}
	if receipt.Status != types.ReceiptStatusSuccessful || receipt.TxHash != tx.Hash() || len(receipt.Logs) != 1 {
		t.Fatalf("receipt: status %d, hash %s, %d logs", receipt.Status, receipt.TxHash, len(receipt.Logs))
	}
	if got := balance(t, n.Chain, to); got.Cmp(amount) != 0 {
		t.Fatalf("recipient holds %v, want %v", got, amount)
	}
	if got := balance(t, n.Chain, from); got.Cmp(new(big.Int).Sub(usdc100, amount)) != 0 {
		t.Fatalf("sender holds %v, want %v", got, new(big.Int).Sub(usdc100, amount))
	}

	byHash, pending, err := ec.TransactionByHash(ctx, tx.Hash())
	if err != nil || pending || byHash.Hash() != tx.Hash() {
		t.Fatalf("TransactionByHash = %v, pending %v, %v", byHash, pending, err)
	}
	if sender, err := ec.TransactionSender(ctx, byHash, receipt.BlockHash, receipt.TransactionIndex); err != nil || sender != from {
		t.Fatalf("TransactionSender = %s, %v; want %s", sender, err, from)
	}
	block, err := ec.BlockByNumber(ctx, receipt.BlockNumber)
	if err != nil {
		t.Fatalf("BlockByNumber(%v): %v", receipt.BlockNumber, err)
	}
	if block.Hash() != receipt.BlockHash || block.Transaction(tx.Hash()) == nil {
		t.Fatalf("block %v (%s) does not hold the transaction", block.Number(), block.Hash())
	}
	if nonce, err := ec.PendingNonceAt(ctx, from); err != nil || nonce != 1 {
		t.Fatalf("PendingNonceAt = %d, %v; want 1", nonce, err)
	}

	// A transaction the pool refuses is an error at once, not a hang.
	stale, err := types.SignNewTx(key, types.LatestSignerForChainID(n.Chain.ChainID()), &types.DynamicFeeTx{
		ChainID: n.Chain.ChainID(), Nonce: 0, GasTipCap: tx.GasTipCap(), GasFeeCap: tx.GasFeeCap(), Gas: 21_000, To: &to,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ec.SendTransaction(ctx, stale); err == nil || !strings.Contains(err.Error(), "nonce too low") {
		t.Fatalf("reused nonce: err = %v, want nonce too low", err)
	}
}

// TestRPCRevert checks that a revert reaches an ethclient caller the way
// geth reports it: code 3, the payload as data, the reason in the message.
func TestRPCRevert(t *testing.T) {
	t.Parallel()
	n := startRPCNetwork(t)
	ctx := testCtx(t)
	ec := dial(t, n.RPCURL)
	tok := token.NewToken()
	addr := n.Chain.TokenAddress()
	poor := common.Address{0x99}
	msg := ethereum.CallMsg{From: poor, To: &addr, Data: tok.PackTransfer(common.Address{1}, big.NewInt(1))}

	const reason = "transfer amount exceeds balance"
	_, err := ec.CallContract(ctx, msg, nil)
	if err == nil || !strings.Contains(err.Error(), "execution reverted: "+reason) {
		t.Fatalf("eth_call: err = %v, want the revert reason %q", err, reason)
	}
	var rpcErr rpc.Error
	var dataErr rpc.DataError
	if !errors.As(err, &rpcErr) || rpcErr.ErrorCode() != 3 || !errors.As(err, &dataErr) ||
		!strings.HasPrefix(dataErr.ErrorData().(string), "0x08c379a0") {
		t.Fatalf("eth_call error %v (%T) is not code 3 with an Error(string) payload", err, err)
	}
	if _, err := ec.EstimateGas(ctx, msg); err == nil || !strings.Contains(err.Error(), reason) {
		t.Fatalf("eth_estimateGas: err = %v, want the revert reason", err)
	}
	// Through the bindings too, which is how most Go code calls.
	_, err = bind.Call(tok.Instance(ec, addr), &bind.CallOpts{Context: ctx, From: poor}, msg.Data, func([]byte) (bool, error) { return true, nil })
	if err == nil || !strings.Contains(err.Error(), reason) {
		t.Fatalf("bind.Call: err = %v, want the revert reason", err)
	}
}

// TestRPCRefusesForeignHosts keeps web pages from reaching the endpoint by
// rebinding their DNS name to loopback, and bounds the request size.
func TestRPCRefusesForeignHosts(t *testing.T) {
	t.Parallel()
	n := startRPCNetwork(t)
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`)
	post := func(host string, body []byte) int {
		t.Helper()
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, n.RPCURL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	u, _ := url.Parse(n.RPCURL)
	if code := post("", body); code != http.StatusOK {
		t.Errorf("own host %s: status %d", u.Host, code)
	}
	if code := post("localhost:"+u.Port(), body); code != http.StatusOK {
		t.Errorf("localhost: status %d", code)
	}
	if code := post("attacker.example:"+u.Port(), body); code != http.StatusForbidden {
		t.Errorf("foreign host: status %d, want 403", code)
	}
	if code := post("", bytes.Repeat([]byte(" "), 2<<20)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: status %d, want 413", code)
	}
}

// TestRPCStopsOnClose: nothing answers on the port once the network is
// closed.
func TestRPCStopsOnClose(t *testing.T) {
	t.Parallel()
	n, err := localnet.Start(testCtx(t), localnet.NetworkConfig{RPC: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	ec := dial(t, n.RPCURL)
	ctx := testCtx(t)
	if _, err := ec.BlockNumber(ctx); err != nil {
		t.Fatalf("BlockNumber before Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := ec.BlockNumber(ctx); err == nil {
		t.Fatal("BlockNumber after Close succeeded")
	}
	u, _ := url.Parse(n.RPCURL)
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Close", u.Host)
	}
}

// TestStartListenAddrs: fixed addresses are used as given, anything that is
// not a loopback IP is refused before a port is taken, and a port in use is
// an error rather than a network on another port.
func TestStartListenAddrs(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:8545", ":8545", "localhost:8545", "192.0.2.1:8545", "[::]:8545"} {
		_, err := localnet.Start(testCtx(t), localnet.NetworkConfig{RPC: true, Addrs: localnet.ListenAddrs{RPC: addr}})
		if !errors.Is(err, localnet.ErrNotLoopback) {
			t.Errorf("RPC address %q: err = %v, want ErrNotLoopback", addr, err)
		}
	}
	if _, err := localnet.Start(testCtx(t), localnet.NetworkConfig{Addrs: localnet.ListenAddrs{Facilitator: "8403"}}); err == nil {
		t.Error("facilitator address without a host was accepted")
	}
	for _, addr := range []string{"127.0.0.1:8545", "127.1.2.3:0", "[::1]:0"} {
		if err := localnet.CheckLoopback(addr); err != nil {
			t.Errorf("CheckLoopback(%s) = %v", addr, err)
		}
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = localnet.Start(testCtx(t), localnet.NetworkConfig{Addrs: localnet.ListenAddrs{API: busy.Addr().String()}})
	if err == nil || !strings.Contains(err.Error(), "paid API") {
		t.Fatalf("API on a busy port: err = %v", err)
	}

	// A free port, then the network on exactly that port.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	n, err := localnet.Start(testCtx(t), localnet.NetworkConfig{RPC: true, Addrs: localnet.ListenAddrs{RPC: addr}})
	if err != nil {
		t.Fatalf("Start on %s: %v", addr, err)
	}
	defer n.Close()
	if n.RPCURL != "http://"+addr {
		t.Fatalf("RPCURL = %s, want http://%s", n.RPCURL, addr)
	}
	if _, err := dial(t, n.RPCURL).ChainID(context.Background()); err != nil {
		t.Fatal(err)
	}
}

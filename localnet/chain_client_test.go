package localnet_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/localnet/token"
)

func TestClientReads(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)
	cl := c.Client()
	_, addr := newAccount(t, c, oneEth, nil)

	if bal, err := cl.BalanceAt(ctx, addr, nil); err != nil || bal.Cmp(oneEth) != 0 {
		t.Fatalf("BalanceAt = %v, %v; want %v", bal, err, oneEth)
	}
	if code, err := cl.CodeAt(ctx, c.TokenAddress(), nil); err != nil || len(code) == 0 {
		t.Fatalf("CodeAt(token) = %d bytes, %v", len(code), err)
	}
	head, err := cl.BlockNumber(ctx)
	if err != nil || head == 0 {
		t.Fatalf("BlockNumber = %d, %v", head, err)
	}
	genesis, err := cl.HeaderByNumber(ctx, big.NewInt(0))
	if err != nil || genesis.Number.Sign() != 0 {
		t.Fatalf("HeaderByNumber(0) = %v, %v", genesis, err)
	}
	if _, err := cl.HeaderByNumber(ctx, new(big.Int).SetUint64(head+1)); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("HeaderByNumber(head+1): err = %v, want NotFound", err)
	}
	if _, err := cl.TransactionReceipt(ctx, common.Hash{1}); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("TransactionReceipt(unknown): err = %v, want NotFound", err)
	}

	// A revert carries what a JSON-RPC server needs to report it like geth.
	tok := token.NewToken()
	to := c.TokenAddress()
	_, err = cl.CallContract(ctx, ethereum.CallMsg{From: addr, To: &to, Data: tok.PackMint(addr, big.NewInt(1))}, nil)
	var re *localnet.RevertError
	if !errors.As(err, &re) || re.ErrorCode() != 3 || !strings.HasPrefix(re.ErrorData().(string), "0x08c379a0") {
		t.Fatalf("revert: %v (%T)", err, err)
	}
}

func TestSendTransactionRejectsWhatCannotBeMined(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)
	key, addr := newAccount(t, c, oneEth, nil)
	head, err := c.Client().HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	feeCap := new(big.Int).Mul(head.BaseFee, big.NewInt(2))
	tx := func(chainID *big.Int, nonce, gas uint64, feeCap, value *big.Int) *types.Transaction {
		t.Helper()
		signed, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
			ChainID: chainID, Nonce: nonce, Gas: gas, To: &common.Address{1},
			GasTipCap: big.NewInt(1), GasFeeCap: feeCap, Value: value,
		})
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	one := big.NewInt(1)
	for name, tt := range map[string]struct {
		tx   *types.Transaction
		want string
	}{
		"nonce gap":          {tx(c.ChainID(), 1, params.TxGas, feeCap, one), "nonce too high"},
		"other chain":        {tx(big.NewInt(1), 0, params.TxGas, feeCap, one), "invalid sender"},
		"below intrinsic":    {tx(c.ChainID(), 0, params.TxGas-1, feeCap, one), "intrinsic gas too low"},
		"above the tx cap":   {tx(c.ChainID(), 0, params.MaxTxGas+1, feeCap, one), "gas limit too high"},
		"under the base fee": {tx(c.ChainID(), 0, params.TxGas, one, one), "max fee per gas less than block base fee"},
		"more than owned":    {tx(c.ChainID(), 0, params.TxGas, feeCap, oneEth), "insufficient funds"},
	} {
		if err := c.Client().SendTransaction(ctx, tt.tx); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tt.want)
		}
	}
	if n, err := c.Client().PendingNonceAt(ctx, addr); err != nil || n != 0 {
		t.Fatalf("PendingNonceAt after rejections = %d, %v; want 0", n, err)
	}

	ok := tx(c.ChainID(), 0, params.TxGas, feeCap, one)
	if err := c.Client().SendTransaction(ctx, ok); err != nil {
		t.Fatal(err)
	}
	if err := c.Client().SendTransaction(ctx, tx(c.ChainID(), 0, params.TxGas, feeCap, big.NewInt(2))); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("second transaction with a pooled nonce: err = %v", err)
	}
	if n, err := c.Client().PendingNonceAt(ctx, addr); err != nil || n != 1 {
		t.Fatalf("PendingNonceAt with one pooled = %d, %v; want 1", n, err)
	}
	if _, pending, err := c.Client().TransactionByHash(ctx, ok.Hash()); err != nil || !pending {
		t.Fatalf("TransactionByHash before mining: pending=%v, %v", pending, err)
	}
	r, err := c.WaitMined(ctx, ok.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful || r.BlockHash == (common.Hash{}) {
		t.Fatalf("WaitMined = %+v, %v", r, err)
	}
	if got, pending, err := c.Client().TransactionByHash(ctx, ok.Hash()); err != nil || pending || got.Hash() != ok.Hash() {
		t.Fatalf("TransactionByHash after mining: pending=%v, %v", pending, err)
	}
}

func TestOldStatesAreReleased(t *testing.T) {
	t.Parallel()
	// No clock throttle: the test needs many blocks quickly.
	c := newChain(t, localnet.ChainConfig{MaxClockDrift: 1000 * time.Hour})
	ctx := testCtx(t)
	_, holder := newAccount(t, c, nil, usdc100)
	key, addr := newAccount(t, c, oneEth, nil)
	first, err := c.Client().BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One self-transfer per block, well past the window of kept states.
	for range 80 {
		nonce, err := c.Client().PendingNonceAt(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := types.SignNewTx(key, types.LatestSignerForChainID(c.ChainID()), &types.DynamicFeeTx{
			ChainID: c.ChainID(), Nonce: nonce, Gas: params.TxGas, To: &addr,
			GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(params.GWei),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Client().SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitMined(ctx, tx.Hash()); err != nil {
			t.Fatal(err)
		}
	}
	head, err := c.Client().BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().NonceAt(ctx, addr, new(big.Int).SetUint64(first)); err == nil {
		t.Errorf("state of block %d (head %d) is still readable", first, head)
	}
	if n, err := c.Client().NonceAt(ctx, addr, new(big.Int).SetUint64(head-1)); err != nil || n != 79 {
		t.Fatalf("NonceAt(head-1) = %d, %v; want 79", n, err)
	}
	// Storage written before the window is still part of the head state.
	if got := balance(t, c, holder); got.Cmp(usdc100) != 0 {
		t.Fatalf("token balance = %v, want %v", got, usdc100)
	}
}

func TestClientAfterClose(t *testing.T) {
	t.Parallel()
	c, err := localnet.NewChain(context.Background(), localnet.ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Client().BlockNumber(ctx); !errors.Is(err, localnet.ErrClosed) {
		t.Errorf("BlockNumber: %v", err)
	}
	if _, err := c.Client().BalanceAt(ctx, common.Address{}, nil); !errors.Is(err, localnet.ErrClosed) {
		t.Errorf("BalanceAt: %v", err)
	}
	if _, err := c.BalanceOf(ctx, common.Address{}); !errors.Is(err, localnet.ErrClosed) {
		t.Errorf("BalanceOf: %v", err)
	}
	if _, err := c.Client().TransactionReceipt(ctx, common.Hash{}); !errors.Is(err, localnet.ErrClosed) {
		t.Errorf("TransactionReceipt: %v", err)
	}
}

package wallet_test

import (
	"bytes"
	"context"
	"math/big"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/wallet"
)

// TestBalancesAndAuthorizationStateOverRPC reads the payer's balance and
// the state of a real payment's authorization from the local chain over
// JSON-RPC, as the server does for a real network.
func TestBalancesAndAuthorizationStateOverRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.NetworkConfig{RPC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	key, payer, err := n.NewPayer(ctx, big.NewInt(2_500_000))
	if err != nil {
		t.Fatal(err)
	}
	reg := tokens.Builtin()
	tok := tokens.Token{Network: n.Chain.Network(), Address: n.Chain.TokenAddress(), Symbol: "USDC", Name: n.Chain.TokenName(),
		Version: n.Chain.TokenVersion(), Decimals: 6, Currency: "USD"}
	if err := reg.Add(tok); err != nil {
		t.Fatal(err)
	}
	r := wallet.New(reg, []wallet.Network{{ID: tok.Network, RPCURL: n.RPCURL}, {ID: "eip155:8453", RPCURL: n.RPCURL}})
	defer r.Close()

	got := r.Balances(ctx, payer, []string{"eip155:84532"})
	byNet := map[string]wallet.Balance{}
	for _, b := range got {
		byNet[b.Network] = b
	}
	if b := byNet[tok.Network]; b.Amount == nil || b.Amount.Int64() != 2_500_000 || b.Token.Symbol != "USDC" {
		t.Errorf("local balance = %+v", b)
	}
	if b := byNet["eip155:8453"]; b.Amount != nil || !strings.Contains(b.Problem, "serves chain 1337, not 8453") {
		t.Errorf("an RPC endpoint for the wrong chain: %+v", b)
	}
	if b := byNet["eip155:84532"]; b.Amount != nil || !strings.Contains(b.Problem, "no RPC endpoint") || !strings.Contains(b.Problem, `add [[networks]] with id = "eip155:84532"`) || !strings.Contains(b.Problem, "X402_MCP_RPC_84532") {
		t.Errorf("a network without RPC: %+v", b)
	}
	for _, b := range got {
		if strings.Contains(b.Problem, n.RPCURL) {
			t.Errorf("a problem shows the RPC URL: %q", b.Problem)
		}
	}

	// Pay once through the real flow, then ask the chain about the nonce.
	led, err := ledger.Open(filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	c, err := pay.New(pay.Config{Registry: reg, Policy: policy.Default(), Signer: signer.New(signer.NewKey(key)), Ledger: led,
		AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Fetch(ctx, pay.Request{URL: n.APIURL + "/v2/weather?city=Quito"})
	if err != nil || res.Payment == nil {
		t.Fatalf("payment: %v", err)
	}
	used, ok, err := r.AuthorizationState(ctx, tok.Network, tok.Address, payer, res.Payment.Nonce)
	if err != nil || !ok || !used {
		t.Errorf("settled authorization: used=%v ok=%v err=%v", used, ok, err)
	}
	fresh := [32]byte(bytes.Repeat([]byte{0xab}, 32))
	if used, ok, err := r.AuthorizationState(ctx, tok.Network, tok.Address, payer, fresh); err != nil || !ok || used {
		t.Errorf("unused authorization: used=%v ok=%v err=%v", used, ok, err)
	}
	if _, ok, _ := r.AuthorizationState(ctx, "eip155:84532", tok.Address, payer, fresh); ok {
		t.Error("a network without RPC claimed to know")
	}
	after := r.Balances(ctx, payer, nil)
	if after[0].Amount == nil || after[0].Amount.Int64() != 2_490_000 {
		t.Errorf("balance after paying 0.01: %+v", after[0])
	}
}

// TestReceiptsAndFinalityOverRPC looks up real transactions on the local
// chain over JSON-RPC: a settlement (succeeded, and it used exactly the
// payment's authorization), a reverted transfer and an unknown hash; and
// reads authorizationState at the finalized block.
func TestReceiptsAndFinalityOverRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.NetworkConfig{RPC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	key, payer, err := n.NewPayer(ctx, big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	reg := tokens.Builtin()
	tok := tokens.Token{Network: n.Chain.Network(), Address: n.Chain.TokenAddress(), Symbol: "USDC", Name: n.Chain.TokenName(),
		Version: n.Chain.TokenVersion(), Decimals: 6, Currency: "USD"}
	if err := reg.Add(tok); err != nil {
		t.Fatal(err)
	}
	r := wallet.New(reg, []wallet.Network{{ID: tok.Network, RPCURL: n.RPCURL}})
	defer r.Close()
	var _ ledger.Chain = r // what the server hands its reconciler

	led, err := ledger.Open(filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	c, err := pay.New(pay.Config{Registry: reg, Policy: policy.Default(), Signer: signer.New(signer.NewKey(key)), Ledger: led,
		AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Fetch(ctx, pay.Request{URL: n.APIURL + "/v2/weather?city=Lima"})
	if err != nil || res.Payment == nil || res.Payment.Transaction == "" {
		t.Fatalf("payment: %v", err)
	}
	asset, nonce, tx := tok.Address, res.Payment.Nonce, res.Payment.Transaction
	other := "0x" + strings.Repeat("cd", 32)
	otherNonce := [32]byte(bytes.Repeat([]byte{0xcd}, 32))

	rc, ok, err := r.TransactionStatus(ctx, tok.Network, tx)
	if err != nil || !ok || rc.Status != wallet.TxSucceeded || rc.Block == 0 {
		t.Fatalf("settlement: %+v ok=%v err=%v", rc, ok, err)
	}
	for _, c := range []struct {
		asset, payer common.Address
		nonce        [32]byte
		want         bool
	}{
		{asset, payer, nonce, true},
		{asset, payer, otherNonce, false},
		{asset, n.PayTo, nonce, false},
		{n.PayTo, payer, nonce, false},
	} {
		if got := rc.UsedAuthorization(c.asset, c.payer, c.nonce); got != c.want {
			t.Errorf("UsedAuthorization(%s, %s, %x) = %v", c.asset, c.payer, c.nonce, got)
		}
	}
	if used, ok, err := r.TransactionUsedAuthorization(ctx, tok.Network, tx, asset, payer, nonce); !used || !ok || err != nil {
		t.Errorf("TransactionUsedAuthorization = %v %v %v", used, ok, err)
	}

	// A transfer of tokens the sender does not have: mined, reverted.
	sender, from, err := n.Chain.NewAccount(ctx, big.NewInt(1e18), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := n.Chain.Client()
	seq, err := cl.PendingNonceAt(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	head, err := cl.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := n.Chain.TokenAddress()
	data := append(common.FromHex("0xa9059cbb"), common.LeftPadBytes(n.PayTo.Bytes(), 32)...)
	data = append(data, common.LeftPadBytes([]byte{1}, 32)...)
	bad, err := types.SignNewTx(sender, types.LatestSignerForChainID(n.Chain.ChainID()), &types.DynamicFeeTx{
		ChainID: n.Chain.ChainID(), Nonce: seq, GasTipCap: big.NewInt(1e9), GasFeeCap: new(big.Int).Add(big.NewInt(1e9), new(big.Int).Mul(head.BaseFee, big.NewInt(2))),
		Gas: 200_000, To: &token, Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SendTransaction(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if mined, err := n.Chain.WaitMined(ctx, bad.Hash()); err != nil || mined.Status != types.ReceiptStatusFailed {
		t.Fatalf("the bad transfer: %+v, %v", mined, err)
	}
	if rc, ok, err := r.TransactionStatus(ctx, tok.Network, bad.Hash().Hex()); err != nil || !ok || rc.Status != wallet.TxReverted ||
		rc.UsedAuthorization(asset, payer, nonce) {
		t.Errorf("reverted transaction: %+v ok=%v err=%v", rc, ok, err)
	}
	if rc, ok, err := r.TransactionStatus(ctx, tok.Network, other); err != nil || !ok || rc.Status != wallet.TxNotFound {
		t.Errorf("unknown transaction: %+v ok=%v err=%v", rc, ok, err)
	}
	if _, _, err := r.TransactionStatus(ctx, tok.Network, "0x1234"); err == nil {
		t.Error("a malformed hash was looked up")
	}
	if _, ok, err := r.TransactionStatus(ctx, "eip155:84532", tx); ok || err != nil {
		t.Errorf("a network without RPC: ok=%v err=%v", ok, err)
	}

	// The local chain finalizes its head: the settlement is final, a fresh
	// nonce is unused there, and the block's time is the chain's.
	now, err := n.Chain.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if used, at, ok, err := r.FinalizedAuthorizationState(ctx, tok.Network, asset, payer, nonce); !used || !ok || err != nil || at != int64(now) {
		t.Errorf("finalized, settled: used=%v at=%d (head %d) ok=%v err=%v", used, at, now, ok, err)
	}
	if used, at, ok, err := r.FinalizedAuthorizationState(ctx, tok.Network, asset, payer, otherNonce); used || !ok || err != nil || at != int64(now) {
		t.Errorf("finalized, fresh: used=%v at=%d ok=%v err=%v", used, at, ok, err)
	}
	if _, _, ok, err := r.FinalizedAuthorizationState(ctx, "eip155:84532", asset, payer, otherNonce); ok || err != nil {
		t.Errorf("finalized without RPC: ok=%v err=%v", ok, err)
	}
}

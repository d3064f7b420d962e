package wallet_test

import (
	"context"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if b := byNet["eip155:84532"]; b.Amount != nil || !strings.Contains(b.Problem, "no RPC endpoint") {
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
	c, err := pay.New(pay.Config{Registry: reg, Policy: policy.Default(), Signer: signer.New(signer.NewKey(key)), Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Fetch(ctx, pay.Request{URL: n.APIURL + "/v2/weather?city=Quito"})
	if err != nil || res.Payment == nil {
		t.Fatalf("payment: %v", err)
	}
	used, ok, err := r.AuthorizationState(ctx, tok.Network, tok.Address.Hex(), payer.Hex(), res.Payment.Nonce)
	if err != nil || !ok || !used {
		t.Errorf("settled authorization: used=%v ok=%v err=%v", used, ok, err)
	}
	fresh := "0x" + strings.Repeat("ab", 32)
	if used, ok, err := r.AuthorizationState(ctx, tok.Network, tok.Address.Hex(), payer.Hex(), fresh); err != nil || !ok || used {
		t.Errorf("unused authorization: used=%v ok=%v err=%v", used, ok, err)
	}
	if _, ok, _ := r.AuthorizationState(ctx, "eip155:84532", tok.Address.Hex(), payer.Hex(), fresh); ok {
		t.Error("a network without RPC claimed to know")
	}
	after := r.Balances(ctx, payer, nil)
	if after[0].Amount == nil || after[0].Amount.Int64() != 2_490_000 {
		t.Errorf("balance after paying 0.01: %+v", after[0])
	}
}

package pay

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// countingSigner is the real signer with a counter, so a test can prove
// that a refused payment never reached it.
type countingSigner struct {
	*signer.Signer
	calls atomic.Int64
}

func (s *countingSigner) Sign(a *policy.Approval) ([]byte, error) {
	s.calls.Add(1)
	return s.Signer.Sign(a)
}

type testNet struct {
	*localnet.Network
	token  tokens.Token
	payer  common.Address
	key    *ecdsa.PrivateKey
	signer *countingSigner
	reg    *tokens.Registry
}

func startNet(t testing.TB, cfg localnet.NetworkConfig, funding int64) *testNet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	key, payer, err := n.NewPayer(ctx, big.NewInt(funding))
	if err != nil {
		t.Fatal(err)
	}
	tok := tokens.Token{Network: n.Chain.Network(), Address: n.Chain.TokenAddress(), Symbol: "USDC",
		Name: n.Chain.TokenName(), Version: n.Chain.TokenVersion(), Decimals: 6, Currency: "USD"}
	reg := tokens.Builtin()
	if err := reg.Add(tok); err != nil {
		t.Fatal(err)
	}
	tok, _ = reg.Lookup(tok.Network, tok.Address)
	return &testNet{Network: n, token: tok, payer: payer, key: key, signer: &countingSigner{Signer: signer.New(signer.NewKey(key))}, reg: reg}
}

func (n *testNet) client(t testing.TB, p policy.Policy) *Client {
	t.Helper()
	return n.clientWith(t, p, openLedger(t))
}

func (n *testNet) clientWith(t testing.TB, p policy.Policy, led *ledger.Ledger) *Client {
	t.Helper()
	c, err := New(Config{Registry: n.reg, Policy: p, Signer: n.signer, Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openLedger opens a fresh ledger file in a temporary directory.
func openLedger(t testing.TB) *ledger.Ledger {
	t.Helper()
	led, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return led
}

func (n *testNet) balances(t testing.TB) (payer, payee *big.Int) {
	t.Helper()
	ctx := context.Background()
	a, err := n.Chain.BalanceOf(ctx, n.payer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Chain.BalanceOf(ctx, n.PayTo)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

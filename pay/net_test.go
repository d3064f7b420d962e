package pay

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"net/netip"
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

func (s *countingSigner) Sign(a *policy.Permit) ([]byte, error) {
	s.calls.Add(1)
	return s.Signer.Sign(a)
}

// loopback lets a test client reach the local network's servers, which
// listen on 127.0.0.1: the guarded transport refuses them otherwise.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

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
	c, err := New(Config{Registry: n.reg, Policy: p, Signer: n.signer, Ledger: led, AllowPrivate: loopback})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clientFor builds a client on the network's registry and counting signer,
// with the rest of cfg as the test gives it: a ledger it holds, an
// Approvals setting, a clock.
func (n *testNet) clientFor(t testing.TB, cfg Config) *Client {
	t.Helper()
	cfg.Registry, cfg.Signer = n.reg, n.signer
	if cfg.AllowPrivate == nil {
		cfg.AllowPrivate = loopback
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openLedger opens a fresh ledger file in a temporary directory.
func openLedger(t testing.TB) *ledger.Ledger {
	t.Helper()
	return openLedgerAt(t, filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
}

// openLedgerAt opens the ledger file at path; opening one path twice is
// what two processes sharing a ledger do.
func openLedgerAt(t testing.TB, path string, opts ledger.Options) *ledger.Ledger {
	t.Helper()
	led, err := ledger.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return led
}

// testClock is a clock a test moves by hand, for the ledger and the client
// together: time passes only when the test says so.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

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

// moved fails the test unless, since (payer0, payee0), the payer's balance
// fell by exactly want atomic units and the payee's rose by as much.
func (n *testNet) moved(t testing.TB, payer0, payee0 *big.Int, want int64) {
	t.Helper()
	payer1, payee1 := n.balances(t)
	paid, got := new(big.Int).Sub(payer0, payer1), new(big.Int).Sub(payee1, payee0)
	if paid.Int64() != want || got.Int64() != want {
		t.Errorf("the payer paid %s and the payee received %s atomic units; want %d each", paid, got, want)
	}
}

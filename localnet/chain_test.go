package localnet_test

import (
	"context"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/localnet/token"
)

func TestChainMetadata(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)

	id, err := c.Client().ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.ChainID().Cmp(id) != 0 {
		t.Fatalf("ChainID() = %v, chain reports %v", c.ChainID(), id)
	}
	if got, want := c.Network(), "eip155:"+id.String(); got != want {
		t.Fatalf("Network() = %q, want %q", got, want)
	}
	if c.TokenName() != "USD Coin" || c.TokenVersion() != "2" {
		t.Fatalf("token domain = %q/%q, want USD Coin/2", c.TokenName(), c.TokenVersion())
	}
	if c.MaxClockDrift() != localnet.DefaultMaxClockDrift {
		t.Fatalf("MaxClockDrift() = %v, want default %v", c.MaxClockDrift(), localnet.DefaultMaxClockDrift)
	}

	tok := token.NewToken()
	call := func(data []byte) []byte {
		t.Helper()
		to := c.TokenAddress()
		out, err := c.Client().CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	name, err := tok.UnpackName(call(tok.PackName()))
	if err != nil || name != "USD Coin" {
		t.Fatalf("name() = %q, %v", name, err)
	}
	version, err := tok.UnpackVersion(call(tok.PackVersion()))
	if err != nil || version != "2" {
		t.Fatalf("version() = %q, %v", version, err)
	}
	symbol, err := tok.UnpackSymbol(call(tok.PackSymbol()))
	if err != nil || symbol != "USDC" {
		t.Fatalf("symbol() = %q, %v", symbol, err)
	}
	decimals, err := tok.UnpackDecimals(call(tok.PackDecimals()))
	if err != nil || decimals != 6 {
		t.Fatalf("decimals() = %d, %v", decimals, err)
	}
	typeHash, err := tok.UnpackTRANSFERWITHAUTHORIZATIONTYPEHASH(call(tok.PackTRANSFERWITHAUTHORIZATIONTYPEHASH()))
	if err != nil {
		t.Fatal(err)
	}
	want := crypto.Keccak256Hash([]byte("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"))
	if common.Hash(typeHash) != want || want != common.HexToHash("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267") {
		t.Fatalf("TRANSFER_WITH_AUTHORIZATION_TYPEHASH = %x, want %x", typeHash, want)
	}
}

func TestDomainSeparatorMatchesEIP712(t *testing.T) {
	t.Parallel()
	for _, cfg := range []localnet.ChainConfig{{}, {TokenName: "Local Dollar", TokenVersion: "7"}} {
		c := newChain(t, cfg)
		got, err := c.DomainSeparator(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		td := typedData(chainDomain(c), localnet.Authorization{})
		want, err := td.HashStruct("EIP712Domain", td.Domain.Map())
		if err != nil {
			t.Fatal(err)
		}
		if common.Hash(got) != common.BytesToHash(want) {
			t.Fatalf("%s/%s: DOMAIN_SEPARATOR() = %x, EIP-712 domain hash = %x", c.TokenName(), c.TokenVersion(), got, want)
		}
	}
}

func TestMintIsOwnerOnly(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)
	_, stranger := newAccount(t, c, oneEth, nil)
	tok := token.NewToken()
	to := c.TokenAddress()
	_, err := c.Client().CallContract(ctx, ethereum.CallMsg{From: stranger, To: &to, Data: tok.PackMint(stranger, big.NewInt(1))}, nil)
	if err == nil || !strings.Contains(err.Error(), "caller is not the owner") {
		t.Fatalf("mint by a stranger: err = %v, want owner-only revert", err)
	}
}

func TestGenesisTokenBalances(t *testing.T) {
	t.Parallel()
	a, b := common.Address{0xaa}, common.Address{0xbb}
	c := newChain(t, localnet.ChainConfig{TokenBalances: map[common.Address]*big.Int{
		a: big.NewInt(5_000_000),
		b: big.NewInt(7),
	}})
	if got := balance(t, c, a); got.Int64() != 5_000_000 {
		t.Fatalf("balance of a = %v", got)
	}
	if got := balance(t, c, b); got.Int64() != 7 {
		t.Fatalf("balance of b = %v", got)
	}
}

func TestClose(t *testing.T) {
	// go-ethereum starts some process-wide workers lazily (the transaction
	// sender cacher); a first chain brings them up so the count below only
	// sees goroutines that belong to a chain.
	warm, err := localnet.NewChain(context.Background(), localnet.ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := warm.Close(); err != nil {
		t.Fatal(err)
	}

	before := chainGoroutines()
	c, err := localnet.NewChain(context.Background(), localnet.ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	payerKey, payer := newAccount(t, c, nil, usdc100)
	facilitator, _ := newAccount(t, c, oneEth, nil)
	a := authorization(t, c, payer, common.Address{9}, 1)
	sig := sign(t, payerKey, chainDomain(c), a)
	if running := chainGoroutines(); len(running) <= len(before) {
		t.Fatalf("goroutine accounting is broken: %d before NewChain, %d while running", len(before), len(running))
	}

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.TransferWithAuthorization(context.Background(), facilitator, a, sig); err == nil {
		t.Fatal("TransferWithAuthorization succeeded on a closed chain")
	}
	if _, _, err := c.NewAccount(context.Background(), oneEth, nil); err == nil {
		t.Fatal("NewAccount succeeded on a closed chain")
	}

	// Some node goroutines wind down just after Close returns.
	deadline := time.Now().Add(5 * time.Second)
	after := chainGoroutines()
	for len(after) > len(before) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		after = chainGoroutines()
	}
	if len(after) > len(before) {
		t.Fatalf("%d chain goroutines before NewChain, %d after Close:\n%s", len(before), len(after), strings.Join(after, "\n\n"))
	}
}

// chainGoroutines returns the stacks of goroutines running go-ethereum or
// Chain code. Other tests in this package run servers of their own, so a
// plain goroutine count would not isolate the chain.
func chainGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/ethereum/go-ethereum/") || strings.Contains(g, "localnet.(*Chain)") {
			out = append(out, g)
		}
	}
	return out
}

func TestCloseUnblocksWaiters(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	payerKey, payer := newAccount(t, c, nil, usdc100)
	facilitator, _ := newAccount(t, c, oneEth, nil)

	// Close while settlements are at every stage (simulating, sending,
	// parked on the miner): each must return rather than hang.
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		a := authorization(t, c, payer, common.Address{byte(i + 1)}, 1)
		sig := sign(t, payerKey, chainDomain(c), a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.TransferWithAuthorization(context.Background(), facilitator, a, sig)
			errs <- err
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("settlements still blocked 10s after Close")
	}
}

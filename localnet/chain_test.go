package localnet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/localnet/token"
)

const (
	reasonUsed       = "authorization is used or canceled"
	reasonExpired    = "authorization is expired"
	reasonNotYet     = "authorization is not yet valid"
	reasonInvalidSig = "invalid signature"
)

var (
	oneEth  = big.NewInt(params.Ether)
	usdc100 = big.NewInt(100_000_000) // 100 USDC at 6 decimals
)

func newChain(t testing.TB, cfg localnet.ChainConfig) *localnet.Chain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := localnet.NewChain(ctx, cfg)
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func newAccount(t testing.TB, c *localnet.Chain, eth, tokens *big.Int) (*ecdsa.PrivateKey, common.Address) {
	t.Helper()
	key, addr, err := c.NewAccount(context.Background(), eth, tokens)
	if err != nil {
		t.Fatalf("NewAccount: %v", err)
	}
	return key, addr
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// domain mirrors what an x402 client builds from the payment requirements.
type domain struct {
	name, version string
	chainID       *big.Int
	contract      common.Address
}

func chainDomain(c *localnet.Chain) domain {
	return domain{c.TokenName(), c.TokenVersion(), c.ChainID(), c.TokenAddress()}
}

func typedData(d domain, a localnet.Authorization) apitypes.TypedData {
	return apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {
				{Name: "name", Type: "string"},
				{Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"},
				{Name: "verifyingContract", Type: "address"},
			},
			"TransferWithAuthorization": {
				{Name: "from", Type: "address"},
				{Name: "to", Type: "address"},
				{Name: "value", Type: "uint256"},
				{Name: "validAfter", Type: "uint256"},
				{Name: "validBefore", Type: "uint256"},
				{Name: "nonce", Type: "bytes32"},
			},
		},
		PrimaryType: "TransferWithAuthorization",
		Domain: apitypes.TypedDataDomain{
			Name:              d.name,
			Version:           d.version,
			ChainId:           (*math.HexOrDecimal256)(d.chainID),
			VerifyingContract: d.contract.Hex(),
		},
		Message: apitypes.TypedDataMessage{
			"from":        a.From.Hex(),
			"to":          a.To.Hex(),
			"value":       a.Value,
			"validAfter":  a.ValidAfter,
			"validBefore": a.ValidBefore,
			"nonce":       hexutil.Encode(a.Nonce[:]),
		},
	}
}

// sign produces the 65-byte r||s||v signature an x402 client sends.
func sign(t testing.TB, key *ecdsa.PrivateKey, d domain, a localnet.Authorization) []byte {
	t.Helper()
	hash, _, err := apitypes.TypedDataAndHash(typedData(d, a))
	if err != nil {
		t.Fatalf("TypedDataAndHash: %v", err)
	}
	sig, err := crypto.Sign(hash, key)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	sig[64] += 27
	return sig
}

// authorization returns an authorization valid from well before to well
// after the chain's current time, with a random nonce.
func authorization(t testing.TB, c *localnet.Chain, from, to common.Address, value int64) localnet.Authorization {
	t.Helper()
	now, err := c.Now(context.Background())
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	a := localnet.Authorization{
		From:        from,
		To:          to,
		Value:       big.NewInt(value),
		ValidAfter:  new(big.Int).SetUint64(now - 600),
		ValidBefore: new(big.Int).SetUint64(now + 300),
	}
	if _, err := rand.Read(a.Nonce[:]); err != nil {
		t.Fatal(err)
	}
	return a
}

func balance(t testing.TB, c *localnet.Chain, addr common.Address) *big.Int {
	t.Helper()
	b, err := c.BalanceOf(context.Background(), addr)
	if err != nil {
		t.Fatalf("BalanceOf: %v", err)
	}
	return b
}

// wantRevert asserts err is (or wraps) a *localnet.RevertError with reason.
func wantRevert(t *testing.T, err error, reason string) {
	t.Helper()
	var re *localnet.RevertError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want a RevertError %q", err, reason)
	}
	if re.Reason != reason {
		t.Fatalf("revert reason = %q, want %q", re.Reason, reason)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("error text %q does not carry the reason %q", err.Error(), reason)
	}
}

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

func TestTransferWithAuthorization(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)
	payerKey, payer := newAccount(t, c, nil, usdc100)
	facilitator, _ := newAccount(t, c, oneEth, nil)
	_, payee := newAccount(t, c, nil, nil)

	a := authorization(t, c, payer, payee, 1_234_567)
	sig := sign(t, payerKey, chainDomain(c), a)

	if used, err := c.AuthorizationState(ctx, payer, a.Nonce); err != nil || used {
		t.Fatalf("AuthorizationState before = %v, %v; want false", used, err)
	}
	if err := c.SimulateTransferWithAuthorization(ctx, crypto.PubkeyToAddress(facilitator.PublicKey), a, sig); err != nil {
		t.Fatalf("simulation of a valid authorization: %v", err)
	}
	payerBefore, payeeBefore := balance(t, c, payer), balance(t, c, payee)

	r, err := c.TransferWithAuthorization(ctx, facilitator, a, sig)
	if err != nil {
		t.Fatalf("TransferWithAuthorization: %v", err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt status = %d", r.Status)
	}
	t.Logf("settlement used %d gas", r.GasUsed)

	if got, want := balance(t, c, payer), new(big.Int).Sub(payerBefore, a.Value); got.Cmp(want) != 0 {
		t.Fatalf("payer balance = %v, want %v", got, want)
	}
	if got, want := balance(t, c, payee), new(big.Int).Add(payeeBefore, a.Value); got.Cmp(want) != 0 {
		t.Fatalf("payee balance = %v, want %v", got, want)
	}
	if used, err := c.AuthorizationState(ctx, payer, a.Nonce); err != nil || !used {
		t.Fatalf("AuthorizationState after = %v, %v; want true", used, err)
	}

	// The receipt must carry the events indexers and facilitators look for.
	tok := token.NewToken()
	var sawUsed, sawTransfer bool
	for _, l := range r.Logs {
		if ev, err := tok.UnpackAuthorizationUsedEvent(l); err == nil {
			sawUsed = ev.Authorizer == payer && ev.Nonce == a.Nonce
		}
		if ev, err := tok.UnpackTransferEvent(l); err == nil {
			sawTransfer = ev.From == payer && ev.To == payee && ev.Value.Cmp(a.Value) == 0
		}
	}
	if !sawUsed || !sawTransfer {
		t.Fatalf("receipt logs: AuthorizationUsed=%v Transfer=%v, want both", sawUsed, sawTransfer)
	}

	// Replaying the very same signed authorization must fail on the nonce.
	err = c.SimulateTransferWithAuthorization(ctx, crypto.PubkeyToAddress(facilitator.PublicKey), a, sig)
	wantRevert(t, err, reasonUsed)
	r, err = c.TransferWithAuthorization(ctx, facilitator, a, sig)
	wantRevert(t, err, reasonUsed)
	if r != nil {
		t.Fatalf("a replay that failed simulation returned a receipt")
	}
	if got, want := balance(t, c, payee), new(big.Int).Add(payeeBefore, a.Value); got.Cmp(want) != 0 {
		t.Fatalf("payee balance after replay = %v, want %v", got, want)
	}
}

func TestTransferWithAuthorizationRejections(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	payerKey, payer := newAccount(t, c, nil, usdc100)
	otherKey, _ := newAccount(t, c, nil, nil)
	facilitator, _ := newAccount(t, c, oneEth, nil)
	_, payee := newAccount(t, c, nil, nil)
	now, err := c.Now(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		build  func() (localnet.Authorization, []byte)
		reason string
	}{
		{"expired", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			a.ValidBefore = new(big.Int).SetUint64(now - 1)
			return a, sign(t, payerKey, chainDomain(c), a)
		}, reasonExpired},
		{"not yet valid", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			a.ValidAfter = new(big.Int).SetUint64(now + 3600)
			a.ValidBefore = new(big.Int).SetUint64(now + 7200)
			return a, sign(t, payerKey, chainDomain(c), a)
		}, reasonNotYet},
		{"signed by another key", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			return a, sign(t, otherKey, chainDomain(c), a)
		}, reasonInvalidSig},
		{"value differs from the signed one", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			sig := sign(t, payerKey, chainDomain(c), a)
			a.Value = big.NewInt(1_000_000)
			return a, sig
		}, reasonInvalidSig},
		{"payee differs from the signed one", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			sig := sign(t, payerKey, chainDomain(c), a)
			a.To = crypto.PubkeyToAddress(otherKey.PublicKey)
			return a, sig
		}, reasonInvalidSig},
		{"other domain name", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			d := chainDomain(c)
			d.name = "USDC"
			return a, sign(t, payerKey, d, a)
		}, reasonInvalidSig},
		{"other chain id", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			d := chainDomain(c)
			d.chainID = big.NewInt(8453)
			return a, sign(t, payerKey, d, a)
		}, reasonInvalidSig},
		{"high-s twin of a valid signature", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			sig := sign(t, payerKey, chainDomain(c), a)
			// (r, n-s, v^1) recovers the same key; only the low-s rule
			// stops it.
			s := new(big.Int).Sub(crypto.S256().Params().N, new(big.Int).SetBytes(sig[32:64]))
			s.FillBytes(sig[32:64])
			sig[64] ^= 1
			return a, sig
		}, "invalid signature 's' value"},
		{"v not 27 or 28", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			sig := sign(t, payerKey, chainDomain(c), a)
			sig[64] -= 27
			return a, sig
		}, "invalid signature 'v' value"},
		{"garbage signature", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			sig := make([]byte, 65)
			sig[64] = 27
			return a, sig
		}, reasonInvalidSig},
		{"more than the payer holds", func() (localnet.Authorization, []byte) {
			a := authorization(t, c, payer, payee, 1)
			a.Value = new(big.Int).Add(usdc100, big.NewInt(1))
			return a, sign(t, payerKey, chainDomain(c), a)
		}, "transfer amount exceeds balance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			a, sig := tt.build()
			err := c.SimulateTransferWithAuthorization(ctx, crypto.PubkeyToAddress(facilitator.PublicKey), a, sig)
			wantRevert(t, err, tt.reason)
			_, err = c.TransferWithAuthorization(ctx, facilitator, a, sig)
			wantRevert(t, err, tt.reason)
			if used, err := c.AuthorizationState(ctx, payer, a.Nonce); err != nil || used {
				t.Fatalf("nonce marked used after a rejected authorization (%v, %v)", used, err)
			}
		})
	}
	if got := balance(t, c, payer); got.Cmp(usdc100) != 0 {
		t.Fatalf("payer balance = %v after only rejected authorizations, want %v", got, usdc100)
	}
}

func TestMalformedInputs(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)
	a := authorization(t, c, common.Address{1}, common.Address{2}, 1)
	if err := c.SimulateTransferWithAuthorization(ctx, common.Address{}, a, make([]byte, 64)); err == nil {
		t.Fatal("64-byte signature accepted")
	}
	a.Value = nil
	if err := c.SimulateTransferWithAuthorization(ctx, common.Address{}, a, make([]byte, 65)); err == nil {
		t.Fatal("nil value accepted")
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

// settleConcurrently submits n authorizations from payers (round-robin) to
// payee, each from one of senders (round-robin), all at once.
func settleConcurrently(t *testing.T, c *localnet.Chain, n int, payers []*ecdsa.PrivateKey, payee common.Address, senders []*ecdsa.PrivateKey) []*types.Receipt {
	t.Helper()
	ctx := testCtx(t)
	type job struct {
		a   localnet.Authorization
		sig []byte
	}
	jobs := make([]job, n)
	for i := range jobs {
		key := payers[i%len(payers)]
		a := authorization(t, c, crypto.PubkeyToAddress(key.PublicKey), payee, int64(1000+i))
		jobs[i] = job{a, sign(t, key, chainDomain(c), a)}
	}
	receipts := make([]*types.Receipt, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			receipts[i], errs[i] = c.TransferWithAuthorization(ctx, senders[i%len(senders)], jobs[i].a, jobs[i].sig)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("settlement %d: %v", i, err)
		}
		if receipts[i].Status != types.ReceiptStatusSuccessful {
			t.Fatalf("settlement %d: status %d", i, receipts[i].Status)
		}
	}
	return receipts
}

func blocksUsed(receipts []*types.Receipt) int {
	blocks := map[uint64]bool{}
	for _, r := range receipts {
		blocks[r.BlockNumber.Uint64()] = true
	}
	return len(blocks)
}

func TestConcurrentSettlementsFromOneSender(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	payerKey, _ := newAccount(t, c, nil, usdc100)
	facilitator, _ := newAccount(t, c, oneEth, nil)
	_, payee := newAccount(t, c, nil, nil)

	const n = 50
	start := time.Now()
	receipts := settleConcurrently(t, c, n, []*ecdsa.PrivateKey{payerKey}, payee, []*ecdsa.PrivateKey{facilitator})
	blocks := blocksUsed(receipts)
	t.Logf("%d settlements from one sender in %v across %d blocks", n, time.Since(start), blocks)

	want := int64(0)
	for i := range n {
		want += int64(1000 + i)
	}
	if got := balance(t, c, payee); got.Int64() != want {
		t.Fatalf("payee balance = %v, want %d", got, want)
	}
	// Batching is the point of the single miner: 50 transactions must not
	// need anywhere near 50 blocks (and so 50 seconds of chain time).
	if blocks > n/5 {
		t.Fatalf("%d settlements used %d blocks; the miner is not batching", n, blocks)
	}
}

func TestConcurrentSettlementsManySenders(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	var payers, senders []*ecdsa.PrivateKey
	for range 4 {
		k, _ := newAccount(t, c, nil, usdc100)
		payers = append(payers, k)
		s, _ := newAccount(t, c, oneEth, nil)
		senders = append(senders, s)
	}
	_, payee := newAccount(t, c, nil, nil)

	const n = 200
	start := time.Now()
	receipts := settleConcurrently(t, c, n, payers, payee, senders)
	elapsed := time.Since(start)
	t.Logf("%d settlements from %d senders in %v across %d blocks", n, len(senders), elapsed, blocksUsed(receipts))

	want := int64(0)
	for i := range n {
		want += int64(1000 + i)
	}
	if got := balance(t, c, payee); got.Int64() != want {
		t.Fatalf("payee balance = %v, want %d", got, want)
	}
}

func TestSameAuthorizationSettledConcurrently(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)
	payerKey, payer := newAccount(t, c, nil, usdc100)
	_, payee := newAccount(t, c, nil, nil)
	var senders []*ecdsa.PrivateKey
	for range 4 {
		k, _ := newAccount(t, c, oneEth, nil)
		senders = append(senders, k)
	}
	a := authorization(t, c, payer, payee, 777)
	sig := sign(t, payerKey, chainDomain(c), a)

	// Every copy passes simulation before any is mined, so the losers are
	// caught by the contract on chain, not by the pre-flight check.
	var wg sync.WaitGroup
	receipts := make([]*types.Receipt, len(senders))
	errs := make([]error, len(senders))
	for i, sender := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			receipts[i], errs[i] = c.TransferWithAuthorization(ctx, sender, a, sig)
		}()
	}
	wg.Wait()
	won, onChain := 0, 0
	for i, err := range errs {
		var re *localnet.RevertError
		switch {
		case err == nil:
			won++
		case errors.Is(err, localnet.ErrTxReverted):
			onChain++
			if receipts[i] == nil || receipts[i].Status != types.ReceiptStatusFailed {
				t.Fatalf("on-chain revert without a failed receipt: %+v", receipts[i])
			}
		case errors.As(err, &re) && re.Reason == reasonUsed:
		default:
			t.Fatalf("settlement %d: unexpected error %v", i, err)
		}
	}
	t.Logf("%d copies: %d settled, %d reverted on chain, %d refused before sending", len(senders), won, onChain, len(senders)-won-onChain)
	if won != 1 {
		t.Fatalf("%d of %d copies of one authorization settled, want exactly 1", won, len(senders))
	}
	if got := balance(t, c, payee); got.Int64() != 777 {
		t.Fatalf("payee balance = %v, want 777", got)
	}
}

func TestChainTimeStaysNearWallClock(t *testing.T) {
	t.Parallel()
	const drift = 2 * time.Second
	c := newChain(t, localnet.ChainConfig{MaxClockDrift: drift})
	ctx := testCtx(t)
	payerKey, payer := newAccount(t, c, nil, usdc100)
	facilitator, _ := newAccount(t, c, oneEth, nil)
	_, payee := newAccount(t, c, nil, nil)

	// checkDrift returns how far r's block is ahead of wall-clock time and
	// fails if that exceeds the limit. Wall-clock is read after the block
	// exists, so it can only be later than when the block was sealed; the
	// bound is therefore never looser than what the miner promised.
	checkDrift := func(r *types.Receipt) time.Duration {
		t.Helper()
		h, err := c.Client().HeaderByHash(ctx, r.BlockHash)
		if err != nil {
			t.Fatal(err)
		}
		ahead := time.Unix(int64(h.Time), 0).Sub(time.Now())
		if ahead > drift {
			t.Fatalf("block %d is %v ahead of wall-clock time, limit %v", h.Number, ahead, drift)
		}
		return ahead
	}

	// Sequential settlements each need a block of their own, so without the
	// throttle every one would push chain time a further second ahead. Keep
	// going until the chain has sat at the edge of its budget for a few
	// settlements, which proves the miner held blocks back rather than the
	// test merely being slow.
	const (
		maxSequential = 15
		wantAtEdge    = 5
	)
	start := time.Now()
	var atEdge, settled int
	var prevBlock uint64
	for atEdge < wantAtEdge {
		if settled == maxSequential {
			t.Fatalf("chain time never reached the drift limit in %d sequential settlements", settled)
		}
		a := authorization(t, c, payer, payee, int64(settled+1))
		r, err := c.TransferWithAuthorization(ctx, facilitator, a, sign(t, payerKey, chainDomain(c), a))
		if err != nil {
			t.Fatalf("settlement %d: %v", settled, err)
		}
		if n := r.BlockNumber.Uint64(); n <= prevBlock {
			t.Fatalf("sequential settlement %d landed in block %d after block %d", settled, n, prevBlock)
		}
		prevBlock = r.BlockNumber.Uint64()
		settled++
		if checkDrift(r) > drift-time.Second {
			atEdge++
		}
	}
	t.Logf("%d sequential settlements took %v with MaxClockDrift %v", settled, time.Since(start), drift)

	// A burst after the budget is spent must still be served promptly, in
	// one or two blocks rather than one block per second each.
	start = time.Now()
	receipts := settleConcurrently(t, c, 20, []*ecdsa.PrivateKey{payerKey}, payee, []*ecdsa.PrivateKey{facilitator})
	for _, r := range receipts {
		checkDrift(r)
	}
	t.Logf("burst of 20 after the budget was spent: %v, %d blocks", time.Since(start), blocksUsed(receipts))
	if blocks := blocksUsed(receipts); blocks > 4 {
		t.Fatalf("burst of 20 used %d blocks", blocks)
	}
}

func TestSenderKeyAlsoUsedOutsideChain(t *testing.T) {
	t.Parallel()
	c := newChain(t, localnet.ChainConfig{})
	ctx := testCtx(t)
	payerKey, payer := newAccount(t, c, nil, usdc100)
	facilitator, facilitatorAddr := newAccount(t, c, oneEth, nil)
	_, payee := newAccount(t, c, nil, nil)

	settle := func() {
		t.Helper()
		a := authorization(t, c, payer, payee, 1)
		if _, err := c.TransferWithAuthorization(ctx, facilitator, a, sign(t, payerKey, chainDomain(c), a)); err != nil {
			t.Fatal(err)
		}
	}
	settle()

	// Spend a nonce behind Chain's back, as a facilitator sharing its key
	// with other tooling would.
	nonce, err := c.Client().PendingNonceAt(ctx, facilitatorAddr)
	if err != nil {
		t.Fatal(err)
	}
	head, err := c.Client().HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := types.SignNewTx(facilitator, types.LatestSignerForChainID(c.ChainID()), &types.DynamicFeeTx{
		ChainID: c.ChainID(), Nonce: nonce, Gas: params.TxGas, To: &payee,
		GasTipCap: big.NewInt(params.GWei), GasFeeCap: new(big.Int).Add(big.NewInt(params.GWei), new(big.Int).Mul(head.BaseFee, big.NewInt(2))),
		Value: big.NewInt(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Client().SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if r, err := c.WaitMined(ctx, tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("WaitMined: %v, %v", r, err)
	}
	settle()
	if got := balance(t, c, payee); got.Int64() != 2 {
		t.Fatalf("payee balance = %v, want 2", got)
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

func BenchmarkTransferWithAuthorization(b *testing.B) {
	// A huge drift lets every iteration get its own block at once; the
	// benchmark measures the settlement path, not the clock throttle.
	c := newChain(b, localnet.ChainConfig{MaxClockDrift: 1000 * time.Hour})
	ctx := context.Background()
	payerKey, payer := newAccount(b, c, nil, new(big.Int).Lsh(big.NewInt(1), 128))
	facilitator, _ := newAccount(b, c, new(big.Int).Mul(oneEth, big.NewInt(1000)), nil)
	_, payee := newAccount(b, c, nil, nil)
	now, err := c.Now(ctx)
	if err != nil {
		b.Fatal(err)
	}
	d := chainDomain(c)

	for b.Loop() {
		a := localnet.Authorization{
			From: payer, To: payee, Value: big.NewInt(1),
			ValidAfter:  big.NewInt(0),
			ValidBefore: new(big.Int).SetUint64(now + 1<<32),
		}
		if _, err := rand.Read(a.Nonce[:]); err != nil {
			b.Fatal(err)
		}
		r, err := c.TransferWithAuthorization(ctx, facilitator, a, sign(b, payerKey, d, a))
		if err != nil || r.Status != types.ReceiptStatusSuccessful {
			b.Fatalf("settlement: %v", err)
		}
	}
}

package localnet_test

import (
	"context"
	"crypto/rand"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/localnet/token"
)

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

package localnet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/x402-mcp/x402-mcp/localnet"
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

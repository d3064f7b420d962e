package signer

import (
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// apitypesDigest is the reference: the typed data an x402 client signs,
// hashed by go-ethereum's general EIP-712 encoder. The message uses the
// shapes the wire uses (hex strings for addresses and nonce).
func apitypesDigest(t tokens.Token, a x402.Authorization) ([32]byte, error) {
	td := apitypes.TypedData{
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
			Name:              t.Name,
			Version:           t.Version,
			ChainId:           (*math.HexOrDecimal256)(t.ChainID),
			VerifyingContract: t.Address.Hex(),
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
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h), nil
}

// randUint returns a random integer of up to bits bits, biased toward the
// edges (0, 1, 2^k-1) where encoding bugs live.
func randUint(r *mrand.Rand, bits int) *big.Int {
	switch r.IntN(6) {
	case 0:
		return big.NewInt(0)
	case 1:
		return big.NewInt(1)
	case 2:
		n := new(big.Int).Lsh(big.NewInt(1), uint(1+r.IntN(bits)))
		return n.Sub(n, big.NewInt(1))
	}
	b := make([]byte, (1+r.IntN(bits))/8+1)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	n := new(big.Int).SetBytes(b)
	if n.BitLen() > bits {
		n.Rsh(n, uint(n.BitLen()-bits))
	}
	return n
}

func randString(r *mrand.Rand) string {
	alphabet := []rune("abcXYZ 0123456789.-_éü€😀\"\\\x00")
	n := 1 + r.IntN(24)
	s := make([]rune, n)
	for i := range s {
		s[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(s)
}

func randAddress(r *mrand.Rand) common.Address {
	var a common.Address
	for i := range a {
		a[i] = byte(r.Uint32())
	}
	return a
}

// TestDigestMatchesAPITypes proves the hand-written encoder equals
// go-ethereum's general one, on random domains and messages.
func TestDigestMatchesAPITypes(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := 0; i < n; i++ {
		chain := randUint(r, 256)
		if chain.Sign() == 0 {
			chain.SetInt64(1)
		}
		tok := tokens.Token{Name: randString(r), Version: randString(r), ChainID: chain, Address: randAddress(r)}
		if tok.Address == (common.Address{}) {
			tok.Address[19] = 1
		}
		a := x402.Authorization{
			From:        randAddress(r),
			To:          randAddress(r),
			Value:       randUint(r, 256),
			ValidAfter:  randUint(r, 256),
			ValidBefore: randUint(r, 256),
		}
		for j := range a.Nonce {
			a.Nonce[j] = byte(r.Uint32())
		}
		want, err := apitypesDigest(tok, a)
		if err != nil {
			t.Fatalf("case %d: apitypes: %v", i, err)
		}
		got, err := Digest(tok, a)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if got != want {
			t.Fatalf("case %d: digest %x, apitypes %x\ntoken %+v\nauth %+v", i, got, want, tok, a)
		}
	}
}

// The vector digests through apitypes too: if this fails while the fast
// path passes, the reference function above is wrong, not the encoder.
func TestAPITypesReferenceAgreesWithVectors(t *testing.T) {
	v := loadVectors(t)
	for _, rv := range v.Recovery {
		a := rv.Authorization.auth(t)
		for name, r := range rv.Recovered {
			got, err := apitypesDigest(v.Domains[name].token(), a)
			if err != nil {
				t.Fatal(err)
			}
			if common.Hash(got) != r.Digest {
				t.Errorf("%s: apitypes digest %x, want %x", name, got, r.Digest)
			}
		}
	}
}

func TestDigestRefusesBadDomain(t *testing.T) {
	v := loadVectors(t)
	good := v.Domains["base-sepolia-usdc"].token()
	a := v.Signing[0].Authorization.auth(t)
	cases := map[string]func(*tokens.Token){
		"empty name":     func(t *tokens.Token) { t.Name = "" },
		"empty version":  func(t *tokens.Token) { t.Version = "" },
		"nil chain id":   func(t *tokens.Token) { t.ChainID = nil },
		"zero chain id":  func(t *tokens.Token) { t.ChainID = big.NewInt(0) },
		"negative chain": func(t *tokens.Token) { t.ChainID = big.NewInt(-84532) },
		"huge chain id":  func(t *tokens.Token) { t.ChainID = new(big.Int).Lsh(big.NewInt(1), 256) },
		"zero contract":  func(t *tokens.Token) { t.Address = common.Address{} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			tok := good
			mutate(&tok)
			if _, err := Digest(tok, a); !errors.Is(err, ErrBadDomain) {
				t.Fatalf("Digest err = %v, want ErrBadDomain", err)
			}
			if sep := DomainSeparator(tok); sep != ([32]byte{}) {
				t.Fatalf("DomainSeparator = %x, want zero for an incomplete domain", sep)
			}
		})
	}
}

func TestDigestRefusesNonUint256(t *testing.T) {
	v := loadVectors(t)
	tok := v.Domains["base-sepolia-usdc"].token()
	good := v.Signing[0].Authorization.auth(t)
	tooBig := new(big.Int).Lsh(big.NewInt(1), 256)
	cases := map[string]func(*x402.Authorization){
		"nil value":         func(a *x402.Authorization) { a.Value = nil },
		"nil validAfter":    func(a *x402.Authorization) { a.ValidAfter = nil },
		"nil validBefore":   func(a *x402.Authorization) { a.ValidBefore = nil },
		"negative value":    func(a *x402.Authorization) { a.Value = big.NewInt(-1) },
		"2^256 value":       func(a *x402.Authorization) { a.Value = tooBig },
		"2^256 validBefore": func(a *x402.Authorization) { a.ValidBefore = tooBig },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a := good
			mutate(&a)
			if _, err := Digest(tok, a); !errors.Is(err, ErrBadAuthorization) {
				t.Fatalf("err = %v, want ErrBadAuthorization", err)
			}
		})
	}
	// The largest uint256 is fine.
	a := good
	a.Value = new(big.Int).Sub(tooBig, big.NewInt(1))
	if _, err := Digest(tok, a); err != nil {
		t.Fatal(err)
	}
}

// The separator cache must be invisible: cold, warm and past its bound it
// returns what a fresh computation returns, and it keys on values, so a
// token whose fields change gets its new separator.
func TestDomainSeparatorCache(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	var toks []tokens.Token
	for range 3 * maxCachedDomains {
		toks = append(toks, tokens.Token{Name: randString(r), Version: randString(r), ChainID: big.NewInt(1 + r.Int64N(1<<40)), Address: randAddress(r)})
	}
	for pass := range 2 {
		for i, tok := range toks {
			if got, want := DomainSeparator(tok), computeDomainSeparator(tok); got != want {
				t.Fatalf("pass %d token %d: cached %x, computed %x", pass, i, got, want)
			}
		}
	}
	separators.RLock()
	n := len(separators.m)
	separators.RUnlock()
	if n > maxCachedDomains {
		t.Fatalf("cache holds %d entries, bound is %d", n, maxCachedDomains)
	}

	v := loadVectors(t)
	tok := v.Domains["base-sepolia-usdc"].token()
	_ = DomainSeparator(tok)
	tok.ChainID.SetInt64(8453) // same *big.Int, new value
	if got := common.Hash(DomainSeparator(tok)); got != v.Domains["wrong-chain-for-base-sepolia-token"].Separator {
		t.Fatalf("separator after changing the chain id in place: %x", got)
	}
}

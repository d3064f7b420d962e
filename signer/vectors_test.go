package signer

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// The vectors come from viem, an implementation independent of this
// package and of go-ethereum's EIP-712 encoder; see testdata/eip3009.json.

type vecDomain struct {
	Name              string         `json:"name"`
	Version           string         `json:"version"`
	ChainID           int64          `json:"chainId"`
	VerifyingContract common.Address `json:"verifyingContract"`
	Separator         common.Hash    `json:"separator"`
}

type vecAuth struct {
	From        common.Address `json:"from"`
	To          common.Address `json:"to"`
	Value       string         `json:"value"`
	ValidAfter  string         `json:"validAfter"`
	ValidBefore string         `json:"validBefore"`
	Nonce       common.Hash    `json:"nonce"`
}

type vectors struct {
	TypeHash common.Hash          `json:"typehash"`
	Domains  map[string]vecDomain `json:"domains"`
	Signing  []struct {
		PrivateKey    hexutil.Bytes  `json:"privateKey"`
		Address       common.Address `json:"address"`
		Authorization vecAuth        `json:"authorization"`
		StructHash    common.Hash    `json:"structHash"`
		Results       map[string]struct {
			Digest    common.Hash   `json:"digest"`
			Signature hexutil.Bytes `json:"signature"`
		} `json:"results"`
	} `json:"signing"`
	Recovery []struct {
		Authorization vecAuth       `json:"authorization"`
		Signature     hexutil.Bytes `json:"signature"`
		Recovered     map[string]struct {
			Digest  common.Hash    `json:"digest"`
			Address common.Address `json:"address"`
		} `json:"recovered"`
	} `json:"recovery"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/eip3009.json")
	if err != nil {
		t.Fatal(err)
	}
	// The "about" keys are prose and are not decoded; the shape check
	// below makes sure the parts the tests rely on are present.
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Domains) != 4 || len(v.Signing) == 0 || len(v.Recovery) == 0 {
		t.Fatalf("testdata/eip3009.json: unexpected shape: %d domains, %d signing, %d recovery", len(v.Domains), len(v.Signing), len(v.Recovery))
	}
	return v
}

func (d vecDomain) token() tokens.Token {
	return tokens.Token{
		Network:  "eip155:" + big.NewInt(d.ChainID).String(),
		ChainID:  big.NewInt(d.ChainID),
		Address:  d.VerifyingContract,
		Symbol:   "USDC",
		Name:     d.Name,
		Version:  d.Version,
		Decimals: 6,
		Currency: "USD",
	}
}

func decimal(t testing.TB, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("bad decimal %q in vectors", s)
	}
	return n
}

func (a vecAuth) auth(t testing.TB) x402.Authorization {
	return x402.Authorization{
		From:        a.From,
		To:          a.To,
		Value:       decimal(t, a.Value),
		ValidAfter:  decimal(t, a.ValidAfter),
		ValidBefore: decimal(t, a.ValidBefore),
		Nonce:       a.Nonce,
	}
}

func vectorKey(t testing.TB, raw []byte) *Key {
	t.Helper()
	k, err := keyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTypeHash(t *testing.T) {
	v := loadVectors(t)
	if common.Hash(transferTypeHash) != v.TypeHash {
		t.Fatalf("typehash %x, want %x", transferTypeHash, v.TypeHash)
	}
}

func TestDomainSeparators(t *testing.T) {
	v := loadVectors(t)
	for name, d := range v.Domains {
		t.Run(name, func(t *testing.T) {
			if got := DomainSeparator(d.token()); common.Hash(got) != d.Separator {
				t.Fatalf("separator %x, want %x", got, d.Separator)
			}
		})
	}
}

// The registry's own entries for the two confirmed networks must produce
// the confirmed separators (x402-notes §5); this catches a registry typo
// that the per-domain vectors above would not.
func TestBuiltinRegistrySeparators(t *testing.T) {
	v := loadVectors(t)
	reg := tokens.Builtin()
	for _, name := range []string{"base-usdc", "base-sepolia-usdc"} {
		d := v.Domains[name]
		tok, ok := reg.Lookup("eip155:"+big.NewInt(d.ChainID).String(), d.VerifyingContract)
		if !ok {
			t.Fatalf("%s: not in the builtin registry", name)
		}
		if got := DomainSeparator(tok); common.Hash(got) != d.Separator {
			t.Errorf("%s: builtin registry separator %x, want %x", name, got, d.Separator)
		}
	}
}

func TestStructHashAndDigests(t *testing.T) {
	v := loadVectors(t)
	for _, s := range v.Signing {
		a := s.Authorization.auth(t)
		sh, err := structHash(a)
		if err != nil {
			t.Fatal(err)
		}
		if common.Hash(sh) != s.StructHash {
			t.Errorf("struct hash %x, want %x", sh, s.StructHash)
		}
		for name, r := range s.Results {
			got, err := Digest(v.Domains[name].token(), a)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if common.Hash(got) != r.Digest {
				t.Errorf("%s: digest %x, want %x", name, got, r.Digest)
			}
		}
	}
	for _, rv := range v.Recovery {
		a := rv.Authorization.auth(t)
		for name, r := range rv.Recovered {
			got, err := Digest(v.Domains[name].token(), a)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if common.Hash(got) != r.Digest {
				t.Errorf("recovery %s: digest %x, want %x", name, got, r.Digest)
			}
		}
	}
}

// signDigest must reproduce viem's bytes exactly: RFC 6979 nonces make
// ECDSA deterministic, so any difference means a different digest, a
// different key or a different v/s convention.
func TestSignDigestVectors(t *testing.T) {
	v := loadVectors(t)
	for _, s := range v.Signing {
		k := vectorKey(t, s.PrivateKey)
		if k.Address() != s.Address {
			t.Fatalf("key address %s, want %s", k.Address().Hex(), s.Address.Hex())
		}
		a := s.Authorization.auth(t)
		if len(s.Results) != 2 {
			t.Fatalf("want 2 signing results, have %d", len(s.Results))
		}
		for name, r := range s.Results {
			t.Run(name, func(t *testing.T) {
				tok := v.Domains[name].token()
				d, err := Digest(tok, a)
				if err != nil {
					t.Fatal(err)
				}
				sig, err := signDigest(k, d)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(sig, r.Signature) {
					t.Fatalf("signature\n got %x\nwant %x", sig, []byte(r.Signature))
				}
				// The same bytes through the post-approval path.
				sig2, err := New(k).sign(tok, a)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(sig2, r.Signature) {
					t.Fatalf("sign path signature\n got %x\nwant %x", sig2, []byte(r.Signature))
				}
				who, err := Recover(tok, a, sig)
				if err != nil {
					t.Fatal(err)
				}
				if who != s.Address {
					t.Fatalf("recovered %s, want %s", who.Hex(), s.Address.Hex())
				}
			})
		}
	}
}

func TestRecoverVectors(t *testing.T) {
	v := loadVectors(t)
	for _, rv := range v.Recovery {
		a := rv.Authorization.auth(t)
		if len(rv.Recovered) != 4 {
			t.Fatalf("want all 4 domains in the recovery vector, have %d", len(rv.Recovered))
		}
		for name, r := range rv.Recovered {
			t.Run(name, func(t *testing.T) {
				got, err := Recover(v.Domains[name].token(), a, rv.Signature)
				if err != nil {
					t.Fatal(err)
				}
				if got != r.Address {
					t.Fatalf("recovered %s, want %s", got.Hex(), r.Address.Hex())
				}
				// Only the right domain may yield the payer: this is what
				// makes a wrong registry entry fail verification.
				if right := name == "base-sepolia-usdc"; right != (got == a.From) {
					t.Fatalf("domain %s recovered %s; payer is %s", name, got.Hex(), a.From.Hex())
				}
			})
		}
	}
}

func TestRecoverRejects(t *testing.T) {
	v := loadVectors(t)
	rv := v.Recovery[0]
	tok := v.Domains["base-sepolia-usdc"].token()
	a := rv.Authorization.auth(t)
	good := []byte(rv.Signature)

	with := func(f func(s []byte) []byte) []byte {
		return f(bytes.Clone(good))
	}
	// The malleated twin (r, N-s, other v) is a valid ECDSA signature for the
	// same key; it must still be refused.
	highS := with(func(s []byte) []byte {
		sv := new(big.Int).SetBytes(s[32:64])
		new(big.Int).Sub(secp256k1N, sv).FillBytes(s[32:64])
		s[64] = 27 + 28 - s[64] // the twin has the other recovery id
		return s
	})
	if _, err := crypto.SigToPub(func() []byte {
		d, _ := Digest(tok, a)
		return d[:]
	}(), append(bytes.Clone(highS[:64]), highS[64]-27)); err != nil {
		t.Fatalf("test setup: high-s twin should be a valid raw signature: %v", err)
	}

	cases := map[string][]byte{
		"v=0":      with(func(s []byte) []byte { s[64] = 0; return s }),
		"v=1":      with(func(s []byte) []byte { s[64] = 1; return s }),
		"v=26":     with(func(s []byte) []byte { s[64] = 26; return s }),
		"v=29":     with(func(s []byte) []byte { s[64] = 29; return s }),
		"empty":    nil,
		"64 bytes": good[:64],
		"66 bytes": append(bytes.Clone(good), 0),
		"high s":   highS,
		"r=0":      with(func(s []byte) []byte { clear(s[:32]); return s }),
		"s=0":      with(func(s []byte) []byte { clear(s[32:64]); return s }),
		"r=N":      with(func(s []byte) []byte { secp256k1N.FillBytes(s[:32]); return s }),
		"s=N-1":    with(func(s []byte) []byte { new(big.Int).Sub(secp256k1N, big.NewInt(1)).FillBytes(s[32:64]); return s }),
	}
	for name, sig := range cases {
		t.Run(name, func(t *testing.T) {
			before := bytes.Clone(sig)
			_, err := Recover(tok, a, sig)
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("err = %v, want ErrBadSignature", err)
			}
			if !bytes.Equal(before, sig) {
				t.Fatal("Recover modified its input")
			}
		})
	}
	// And the unmodified signature still recovers, with the caller's v
	// untouched (Recover works on a copy).
	if got, err := Recover(tok, a, good); err != nil || got != a.From {
		t.Fatalf("good signature: %s, %v", got.Hex(), err)
	}
	if good[64] != 27 && good[64] != 28 {
		t.Fatalf("Recover changed the caller's v to %d", good[64])
	}
}

package signer

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/x402-mcp/x402-mcp/policy"
)

// Run with: go test -run '^$' -bench . -benchmem ./signer/
//
// BenchmarkSign is the signing path of Sign after the permit gate:
// checks, digest, crypto.Sign, v += 27. BenchmarkCryptoSign is the floor
// (the ECDSA operation alone) and BenchmarkDigestAPITypes the general
// encoder the fast digest replaces, so the three together show where the
// time goes.

func benchInputs(b *testing.B) (*Signer, func() ([]byte, error)) {
	v := loadVectors(b)
	sv := v.Signing[0]
	s := New(vectorKey(b, sv.PrivateKey))
	tok := v.Domains["base-sepolia-usdc"].token()
	a := sv.Authorization.auth(b)
	return s, func() ([]byte, error) { return s.sign(tok, a) }
}

func BenchmarkSign(b *testing.B) {
	_, sign := benchInputs(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sign(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignApproved adds permit issuance and consumption by the real
// policy package, i.e. everything Sign's caller pays per payment after the
// ledger's reservation (measured in package ledger, and kept out of the
// timing here).
func BenchmarkSignApproved(b *testing.B) {
	k, _ := GenerateKey()
	s := New(k)
	tok := baseSepolia(b)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		auth := freshAuthorization(b, s.Address(), now)
		res := reserve(b, tok, auth)
		b.StartTimer()
		a, err := policy.Default().Approve(request(tok, auth), auth, res, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Sign(a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	v := loadVectors(b)
	tok := v.Domains["base-sepolia-usdc"].token()
	a := v.Signing[0].Authorization.auth(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Digest(tok, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigestAPITypes(b *testing.B) {
	v := loadVectors(b)
	tok := v.Domains["base-sepolia-usdc"].token()
	a := v.Signing[0].Authorization.auth(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apitypesDigest(tok, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCryptoSign(b *testing.B) {
	s, _ := benchInputs(b)
	var digest [32]byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := crypto.Sign(digest[:], s.key.s.priv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecover(b *testing.B) {
	v := loadVectors(b)
	rv := v.Recovery[0]
	tok := v.Domains["base-sepolia-usdc"].token()
	a := rv.Authorization.auth(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Recover(tok, a, rv.Signature); err != nil {
			b.Fatal(err)
		}
	}
}

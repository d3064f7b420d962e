package signer

import (
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Key holds a secp256k1 private key.
//
// Nothing that renders a Key shows the secret: fmt (every verb), slog, JSON
// and text marshalling all produce "signer.Key(0x<address>)". The secret sits
// behind an unexported pointer so that even a Key *value* printed by fmt or
// a reflection-based dumper (which do not call the pointer methods) shows a
// memory address, not the key. Copies of a Key share the same secret.
type Key struct {
	s *secret
}

// secret is never reachable through an exported field or method.
type secret struct {
	priv *ecdsa.PrivateKey
	addr common.Address
}

// NewKey wraps an in-process key (tests, the local network). It takes a
// private copy, so later changes to priv do not affect the Key. It panics if
// priv is nil or not a valid secp256k1 scalar: with an in-memory key that
// is a bug in the caller, not an operator mistake.
func NewKey(priv *ecdsa.PrivateKey) *Key {
	if priv == nil || priv.D == nil {
		panic("signer: NewKey called with a nil private key")
	}
	raw := crypto.FromECDSA(priv)
	defer clear(raw)
	k, err := keyFromBytes(raw)
	if err != nil {
		panic("signer: NewKey called with an invalid secp256k1 private key")
	}
	return k
}

// GenerateKey makes a fresh key from crypto/rand.
func GenerateKey() (*Key, error) {
	priv, err := crypto.GenerateKey()
	if err != nil {
		// The error comes from the random source and holds no key.
		return nil, fmt.Errorf("signer: generating a key: %w", err)
	}
	return &Key{s: &secret{priv: priv, addr: crypto.PubkeyToAddress(priv.PublicKey)}}, nil
}

// keyFromBytes builds a Key from a raw 32-byte scalar. The caller zeroes
// raw. go-ethereum's error is dropped on purpose: the message is ours and
// says only what is wrong, never what the bytes were.
func keyFromBytes(raw []byte) (*Key, error) {
	priv, err := crypto.ToECDSA(raw)
	if err != nil {
		return nil, ErrBadKey
	}
	return &Key{s: &secret{priv: priv, addr: crypto.PubkeyToAddress(priv.PublicKey)}}, nil
}

// valid reports whether k holds a key (the zero Key and nil do not).
func (k *Key) valid() bool { return k != nil && k.s != nil && k.s.priv != nil }

// Address is the account the key controls. It is the zero address for a
// nil or zero Key.
func (k *Key) Address() common.Address {
	if !k.valid() {
		return common.Address{}
	}
	return k.s.addr
}

// redacted is the one rendering every formatter below returns.
func (k *Key) redacted() string {
	if !k.valid() {
		return "signer.Key(<none>)"
	}
	return "signer.Key(" + k.s.addr.Hex() + ")"
}

// String shows the address only.
func (k *Key) String() string { return k.redacted() }

// GoString makes %#v show the address only.
func (k *Key) GoString() string { return k.redacted() }

// Format handles every fmt verb, including %x and %d, which would otherwise
// bypass String and walk the struct.
func (k *Key) Format(f fmt.State, verb rune) {
	s := k.redacted()
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = f.Write([]byte(s))
}

// LogValue keeps the key out of slog output, whatever the handler.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.redacted()) }

// MarshalText keeps the key out of encoders that use text (encoding/xml,
// map keys, some log libraries).
func (k *Key) MarshalText() ([]byte, error) { return []byte(k.redacted()), nil }

// MarshalJSON keeps the key out of JSON.
func (k *Key) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(k.redacted())), nil }

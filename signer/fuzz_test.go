package signer

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzParseHexKey: the key parser reads operator files and the
// environment. It must never panic, its errors must be one of its fixed
// messages (so no input can be echoed), and what it accepts must be exactly
// the 64 hex digits it was given.
func FuzzParseHexKey(f *testing.F) {
	for _, s := range []string{
		"0x" + testKeyHex, testKeyHex + "\n", " 0X" + strings.ToUpper(testKeyHex) + "\r\n",
		"", "0x", "0x0", strings.Repeat("0", 64), strings.Repeat("f", 64), "0x" + testKeyHex[:63] + "g",
	} {
		f.Add([]byte(s))
	}
	fixed := map[string]bool{errKeyLength.Error(): true, errKeyDigits.Error(): true, errKeyRange.Error(): true}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		k, err := parseHexKey(in)
		if !bytes.Equal(orig, in) {
			t.Fatal("parseHexKey modified its input")
		}
		if err != nil {
			if !fixed[err.Error()] {
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		body := strings.ToLower(string(trimSpace(in)))
		body = strings.TrimPrefix(body, "0x")
		got := hex.EncodeToString(k.s.priv.D.FillBytes(make([]byte, 32)))
		if got != body {
			t.Fatalf("accepted %q as key %s", in, got)
		}
	})
}

// FuzzRecover: signatures come from outside when verifying. Recover must
// not panic, must not modify its input, and whatever it accepts has the
// shape Sign produces.
func FuzzRecover(f *testing.F) {
	v := loadVectors(f)
	tok := v.Domains["base-sepolia-usdc"].token()
	rv := v.Recovery[0]
	f.Add([]byte(rv.Signature))
	f.Add([]byte(v.Signing[0].Results["base-sepolia-usdc"].Signature))
	f.Add(make([]byte, 65))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sig []byte) {
		a := rv.Authorization.auth(t)
		orig := bytes.Clone(sig)
		_, err := Recover(tok, a, sig)
		if !bytes.Equal(orig, sig) {
			t.Fatal("Recover modified its input")
		}
		if err == nil && (len(sig) != 65 || (sig[64] != 27 && sig[64] != 28)) {
			t.Fatalf("accepted malformed signature %x", sig)
		}
	})
}

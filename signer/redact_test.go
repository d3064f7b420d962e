package signer

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyRedaction renders a Key every way the rest of the program might:
// none of them may show the secret, and the pointer forms show the address.
func TestKeyRedaction(t *testing.T) {
	k := vectorKey(t, mustHex(t, testKeyHex))
	s := New(k)
	type holder struct {
		Name   string
		Key    *Key
		Signer *Signer
	}
	type hidden struct {
		key *Key
		val Key
	}
	h := holder{Name: "wallet", Key: k, Signer: s}
	values := map[string]any{
		"*Key":          k,
		"Key value":     *k,
		"holder":        h,
		"*holder":       &h,
		"unexported":    hidden{key: k, val: *k},
		"*Signer":       s,
		"Signer value":  *s,
		"[]*Key":        []*Key{k},
		"map[string]*K": map[string]*Key{"k": k},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d", "%T"} {
			out := fmt.Sprintf(verb, v)
			assertNoSecret(t, name+" "+verb, out)
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%10.3v"} {
		if out := fmt.Sprintf(verb, k); !strings.Contains(out, testAddress) {
			t.Errorf("%s of *Key = %q, want the address", verb, out)
		}
	}
	if got, want := k.String(), "signer.Key("+testAddress+")"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := fmt.Sprint((*Key)(nil)); strings.Contains(got, "0x") {
		t.Errorf("nil key prints %q", got)
	}

	// slog, through both built-in handlers and as a nested attribute.
	var buf bytes.Buffer
	jl := slog.New(slog.NewJSONHandler(&buf, nil))
	jl.Info("loaded", "key", k, "holder", h, slog.Group("g", slog.Any("k", k)))
	tl := slog.New(slog.NewTextHandler(&buf, nil))
	tl.Info("loaded", "key", k, "holder", h, "signer", s)
	assertNoSecret(t, "slog", buf.String())
	if !strings.Contains(buf.String(), testAddress) {
		t.Errorf("slog output lacks the address: %s", buf.String())
	}

	// JSON and XML of values holding a key.
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json", string(j))
	if !strings.Contains(string(j), testAddress) {
		t.Errorf("json lacks the address: %s", j)
	}
	j, err = json.Marshal(map[string]any{"k": k, "v": *k})
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json map", string(j))
	type wallet struct{ K *Key }
	x, err := xml.Marshal(wallet{k})
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "xml", string(x))

	// A panic carrying a key (e.g. a failed type assertion message built
	// with %v) renders through the same methods.
	func() {
		defer func() {
			assertNoSecret(t, "panic", fmt.Sprint(recover()))
		}()
		panic(fmt.Sprintf("unexpected %v", k))
	}()
}

// TestPastedKeyAsPath: a key (or recovery phrase) pasted where the path of
// its file belongs is refused without being shown, and says what it looks
// like; a passphrase pasted as the passphrase file's path is not shown
// either, since nothing tells a passphrase from a file name.
func TestPastedKeyAsPath(t *testing.T) {
	dir := t.TempDir()
	keystore := filepath.Join(dir, "ks.json")
	if err := os.WriteFile(keystore, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	const passphrase = "Tr0ub4dor-and-3-horses"
	mnemonic := "abandon ability able about above absent absorb abstract absurd abuse access accident"
	for _, path := range []string{testKeyHex, "0x" + testKeyHex, filepath.Join(dir, "0x"+testKeyHex), filepath.Join(dir, mnemonic)} {
		for name, load := range map[string]func() error{
			"LoadHexFile":            func() error { _, err := LoadHexFile(path); return err },
			"LoadKeystore":           func() error { _, err := LoadKeystore(path, filepath.Join(dir, "pass")); return err },
			"LoadKeystore with pass": func() error { _, err := LoadKeystore(keystore, path); return err },
		} {
			err := load()
			if err == nil {
				t.Fatalf("%s(%.12s…) loaded", name, path)
			}
			assertNoSecret(t, name, err.Error())
			for _, part := range []string{testKeyHex[:16], "abandon ability"} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("%s: error shows %q: %v", name, part, err)
				}
			}
			if !strings.Contains(err.Error(), "this looks like a private key, not a path; the value is not shown") {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	_, err := LoadKeystore(keystore, filepath.Join(dir, passphrase))
	if err == nil || strings.Contains(err.Error(), passphrase) || !strings.Contains(err.Error(), "not shown") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing passphrase file: %v", err)
	}
	// A key file path that is a path is named, so the operator can fix it.
	missing := filepath.Join(dir, "payer.key")
	if _, err := LoadHexFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing key file: %v", err)
	}
}

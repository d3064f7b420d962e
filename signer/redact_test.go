package signer

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
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

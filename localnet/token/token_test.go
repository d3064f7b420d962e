package token

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
)

// The committed Token.abi/Token.bin and the binding are produced together by
// gen.sh; this catches a binding left behind after a partial regeneration.
func TestBindingMatchesArtifacts(t *testing.T) {
	bin, err := os.ReadFile("Token.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimPrefix(TokenMetaData.Bin, "0x"), strings.TrimSpace(string(bin)); got != want {
		t.Fatal("token.go embeds different bytecode than Token.bin; run gen.sh")
	}

	raw, err := os.ReadFile("Token.abi")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := abi.JSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := TokenMetaData.ParseABI()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := signatures(fromFile), signatures(*embedded); !slices.Equal(a, b) {
		t.Fatalf("token.go ABI differs from Token.abi; run gen.sh\nfile:     %v\nembedded: %v", a, b)
	}
}

func signatures(a abi.ABI) []string {
	var out []string
	for _, m := range a.Methods {
		out = append(out, m.Sig+" "+m.StateMutability)
	}
	for _, e := range a.Events {
		out = append(out, "event "+e.Sig)
	}
	out = append(out, "constructor "+a.Constructor.Sig)
	slices.Sort(out)
	return out
}

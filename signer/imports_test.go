package signer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the dependency shape from rotting: the package that
// holds the key may depend on the policy, the token registry, the wire
// types and go-ethereum, and on nothing that speaks MCP or serves HTTP. A
// new edge toward the rest of the program (pay, tools, cmd, …) would let
// that code reach the key by a path other than Sign.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/x402-mcp/x402-mcp/"
	allowedOwn := map[string]bool{
		self + "signer": true,
		self + "policy": true,
		self + "tokens": true,
		self + "x402":   true,
		// policy reports file errors in the shared shape.
		self + "internal/fileerr": true,
		// policy issues a permit only against the ledger's proof that
		// the payment was reserved (ledger.Reservation).
		self + "ledger": true,
		// policy suggests the key a typo meant.
		self + "internal/suggest": true,
		// hints quote paths the way cmd does.
		self + "internal/shellquote": true,
		// errors decide the same way as cmd and config whether a path the
		// operator typed may be shown (it may be a pasted key).
		self + "internal/redact": true,
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(p, self) && !allowedOwn[p]:
			t.Errorf("signer depends on %s; only policy, ledger, tokens and x402 are allowed", p)
		case strings.Contains(p, "mcp-go"), strings.Contains(p, "modelcontextprotocol"):
			t.Errorf("signer depends on MCP package %s", p)
		case p == "net/http/httptest", strings.HasPrefix(p, "net/http/pprof"):
			t.Errorf("signer depends on %s", p)
		}
	}

	// The package's own imports: no HTTP at all, whatever its
	// dependencies need.
	out, err = exec.Command(goTool, "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "net/") || p == "net" {
			t.Errorf("signer imports %s directly", p)
		}
	}
}

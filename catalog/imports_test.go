package catalog

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is everything outside the standard library this package
// may use. Finding endpoints must not be able to pay for them: nothing of
// pay, policy, signer or the ledger, and nothing MCP (the tool handler is
// the caller's).
var allowedImports = map[string]bool{
	"github.com/x402-mcp/x402-mcp/x402":             true,
	"github.com/x402-mcp/x402-mcp/internal/fileerr": true,
	"github.com/ethereum/go-ethereum/common":        true,
	"github.com/tidwall/gjson":                      true,
	"github.com/pelletier/go-toml/v2":               true,
	"github.com/pelletier/go-toml/v2/unstable":      true,
}

func TestImportsStayLow(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.SplitN(path, "/", 2)[0], ".")
			if !std && !allowedImports[path] {
				t.Errorf("%s imports %s; package catalog finds endpoints and must not reach payment or MCP code", name, path)
			}
		}
	}
}

package x402

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is everything outside the standard library this package may
// use. The wire format sits at the bottom of the dependency graph: no MCP, no
// HTTP server, nothing of ours, so that it can be reviewed and fuzzed alone.
var allowedImports = map[string]bool{
	"github.com/ethereum/go-ethereum/common": true,
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
			// net/http is here for the http.Header type; its sub-packages
			// (servers, test servers, tracing) are not.
			if (!std && !allowedImports[path]) || strings.HasPrefix(path, "net/http/") {
				t.Errorf("%s imports %s; package x402 is wire format only", name, path)
			}
		}
	}
}

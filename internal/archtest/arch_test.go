package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/x402-mcp/x402-mcp"

// forbidden maps a package to import paths (prefixes) that must not appear
// among its dependencies, direct or not.
var forbidden = map[string][]string{
	"tokens":       {module + "/", "github.com/mark3labs/mcp-go", "net/http"},
	"x402":         {module + "/", "github.com/mark3labs/mcp-go", "net/http/httptest"},
	"policy":       {module + "/pay", module + "/signer", module + "/tools", module + "/config", module + "/localnet", "github.com/mark3labs/mcp-go", "net/http/httptest"},
	"signer":       {module + "/pay", module + "/tools", module + "/config", module + "/localnet", "github.com/mark3labs/mcp-go", "net/http/httptest"},
	"pay":          {module + "/tools", module + "/config", module + "/localnet", module + "/signer", "github.com/mark3labs/mcp-go"},
	"cmd/x402-mcp": {"github.com/ethereum/go-ethereum/node", "github.com/ethereum/go-ethereum/p2p/discover", "github.com/ethereum/go-ethereum/p2p/nat", "github.com/ethereum/go-ethereum/eth/catalyst", "github.com/ethereum/go-ethereum/ethclient/simulated", "github.com/cockroachdb/pebble", "github.com/syndtr/goleveldb"},
	"ledger":       {module + "/", "github.com/mark3labs/mcp-go", "net/http"},
	"config":       {module + "/pay", module + "/tools", module + "/signer", module + "/localnet", "github.com/mark3labs/mcp-go"},
	"tools":        {module + "/signer", module + "/localnet", module + "/config"},
	"localnet":     {module + "/x402", module + "/pay", module + "/signer", module + "/policy", module + "/tools", module + "/catalog", module + "/wallet"},
	"wallet":       {module + "/pay", module + "/signer", module + "/policy", module + "/tools", module + "/ledger", "github.com/mark3labs/mcp-go"},
	"catalog":      {module + "/pay", module + "/signer", module + "/policy", module + "/tools", module + "/ledger", "github.com/mark3labs/mcp-go"},
}

func TestDependencyDirection(t *testing.T) {
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == module+"/"+pkg {
				continue
			}
			for _, b := range bad {
				if dep == strings.TrimSuffix(b, "/") || strings.HasPrefix(dep, b) && (strings.HasSuffix(b, "/") || dep == b || strings.HasPrefix(dep, b+"/")) {
					t.Errorf("%s depends on %s, which the design forbids", pkg, dep)
				}
			}
		}
	}
}

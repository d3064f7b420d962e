package archtest

import (
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/x402-mcp/x402-mcp"

// allowed lists, for every package of the module, the module packages it
// may import directly. A new package, or a new edge, has to be added here
// on purpose. The shape (../shared/STYLE.md): cmd wires everything; tools
// calls catalog and pay, and reads the value types it shows (ledger
// records, token amounts, USD limits, declared inputs) without any way to
// sign; pay is the one flow that spends and the only user of the ledger's
// writes; x402 and ledger import nothing of ours, tokens only
// internal/redact (its errors decide like every other package's whether a
// value may be shown).
var allowed = map[string][]string{
	"tokens":              {"internal/redact"},
	"x402":                {},
	"ledger":              {},
	"internal/fileerr":    {"internal/redact"},
	"internal/shellquote": {},
	"internal/redact":     {},
	"internal/archtest":   {},
	"internal/netguard":   {},
	"internal/release":    {},
	"internal/suggest":    {},
	"internal/humantime":  {},
	"internal/pgtest":     {},
	"scripts/mcpfloor":    {},
	"scripts/pgcluster":   {"internal/pgtest", "internal/shellquote"},
	"scripts/release":     {"internal/release"},
	"policy":              {"internal/fileerr", "internal/redact", "internal/suggest", "ledger", "tokens", "x402"},
	"signer":              {"internal/redact", "internal/shellquote", "policy", "tokens", "x402"},
	"pay":                 {"internal/netguard", "ledger", "policy", "tokens", "x402"},
	"catalog":             {"internal/fileerr", "x402"},
	"wallet":              {"tokens"},
	"config":              {"internal/fileerr", "internal/netguard", "internal/redact", "policy", "tokens"},
	"tools":               {"catalog", "pay", "wallet", "internal/shellquote", "ledger", "policy", "tokens", "upstream", "x402"},
	"upstream":            {"pay", "x402"},
	"console":             {"internal/humantime", "ledger", "pay", "policy", "tokens", "x402"},
	"localnet":            {"tokens", "localnet/token"},
	"localnet/token":      {},
	"scripts/servebench":  {"localnet"},
	"cmd/x402-mcp":        {"catalog", "config", "console", "internal/humantime", "internal/redact", "internal/shellquote", "internal/suggest", "ledger", "localnet", "localnet/token", "pay", "policy", "signer", "tokens", "tools", "upstream", "wallet", "x402"},
}

// forbidden maps a package to import paths (prefixes) that must not appear
// among its dependencies, direct or not: outside code that would give it a
// job that is not its own.
var forbidden = map[string][]string{
	"tokens":            {"github.com/mark3labs/mcp-go", "net/http"},
	"x402":              {"github.com/mark3labs/mcp-go", "net/http/httptest"},
	"policy":            {"github.com/mark3labs/mcp-go", "net/http/httptest"},
	"signer":            {"github.com/mark3labs/mcp-go", "net/http/httptest"},
	"pay":               {"github.com/mark3labs/mcp-go"},
	"ledger":            {"github.com/mark3labs/mcp-go", "net/http"},
	"internal/netguard": {"github.com/mark3labs/mcp-go", "net/http"},
	"config":            {"github.com/mark3labs/mcp-go"},
	"wallet":            {"github.com/mark3labs/mcp-go"},
	"catalog":           {"github.com/mark3labs/mcp-go"},
	"upstream":          {"github.com/x402-mcp/x402-mcp/signer"},
	// The console never signs and never needs the wallet key.
	"console":      {"github.com/x402-mcp/x402-mcp/signer", "github.com/x402-mcp/x402-mcp/wallet", "github.com/mark3labs/mcp-go"},
	"cmd/x402-mcp": {"github.com/ethereum/go-ethereum/node", "github.com/ethereum/go-ethereum/p2p/discover", "github.com/ethereum/go-ethereum/p2p/nat", "github.com/ethereum/go-ethereum/eth/catalyst", "github.com/ethereum/go-ethereum/ethclient/simulated", "github.com/cockroachdb/pebble", "github.com/syndtr/goleveldb"},
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

// TestImportsAllowed holds every package's direct imports within the
// module to the allow-list, and every package of the module to having one.
func TestImportsAllowed(t *testing.T) {
	for _, line := range goList(t, "-f", "{{.ImportPath}}:{{join .Imports \",\"}}", module+"/...") {
		pkg, imports, _ := strings.Cut(line, ":")
		name := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		ok, known := allowed[name]
		if !known {
			t.Errorf("package %s is not in the allow-list: add it to internal/archtest with the packages it may import", name)
			continue
		}
		var bad []string
		for _, imp := range strings.Split(imports, ",") {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if dep := strings.TrimPrefix(imp, module+"/"); !slices.Contains(ok, dep) {
				bad = append(bad, dep)
			}
		}
		sort.Strings(bad)
		for _, b := range bad {
			t.Errorf("%s imports %s, which the design does not allow", name, b)
		}
	}
}

func TestDependencyDirection(t *testing.T) {
	for pkg, bad := range forbidden {
		for _, dep := range goList(t, "-deps", module+"/"+pkg) {
			for _, b := range bad {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s depends on %s, which the design forbids", pkg, dep)
				}
			}
		}
	}
}

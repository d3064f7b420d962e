package localnet_test

import (
	"crypto/ecdsa"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/pelletier/go-toml/v2"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/localnet/token"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// loopbackAddrs are what a test passes where devnet has fixed ports, so
// parallel tests never collide.
var loopbackAddrs = localnet.ListenAddrs{RPC: "127.0.0.1:0", Facilitator: "127.0.0.1:0", API: "127.0.0.1:0"}

func startDevnet(t *testing.T, dir string) *localnet.Devnet {
	t.Helper()
	d, err := localnet.StartDevnet(testCtx(t), localnet.DevnetConfig{Dir: dir, Addrs: loopbackAddrs, WriteKey: writeKey})
	if err != nil {
		t.Fatalf("StartDevnet: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// devnetConfig is config.toml as the config package will read it.
type devnetConfig struct {
	PolicyFile string `toml:"policy_file"`
	Ledger     string `toml:"ledger"`
	Wallet     struct {
		KeyFile string `toml:"key_file"`
	} `toml:"wallet"`
	Networks []struct {
		ID     string `toml:"id"`
		RPCURL string `toml:"rpc_url"`
	} `toml:"networks"`
	Discovery struct {
		Facilitators []string `toml:"facilitators"`
	} `toml:"discovery"`
	HTTP struct {
		AllowPrivate []string `toml:"allow_private"`
	} `toml:"http"`
	Tokens []struct {
		Network, Address, Symbol, Name, Version, Currency string
		Decimals                                          int
	} `toml:"tokens"`
}

func readDevnetConfig(t *testing.T, path string) (devnetConfig, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg devnetConfig
	if err := toml.NewDecoder(strings.NewReader(string(data))).DisallowUnknownFields().Decode(&cfg); err != nil {
		t.Fatalf("%s is not the expected TOML: %v\n%s", path, err, data)
	}
	return cfg, string(data)
}

func TestDevnetWritesFiles(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "devnet") // created by StartDevnet
	d := startDevnet(t, dir)
	n := d.Network

	if d.Dir != dir || d.ConfigPath != filepath.Join(dir, "config.toml") {
		t.Fatalf("Dir %s, ConfigPath %s", d.Dir, d.ConfigPath)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]fs.FileMode{dir: 0o700 | fs.ModeDir, d.ConfigPath: 0o600, d.PolicyPath: 0o600, d.KeyPath: 0o600} {
			if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
				t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode(), err, want)
			}
		}
	}

	cfg, text := readDevnetConfig(t, d.ConfigPath)
	if !strings.HasPrefix(text, localnet.DevnetMarker+"\n") {
		t.Errorf("config.toml does not start with the devnet marker:\n%s", text)
	}
	if cfg.PolicyFile != "policy.toml" || cfg.Ledger != filepath.Base(d.LedgerPath) || !strings.HasPrefix(cfg.Ledger, "ledger-") ||
		filepath.Dir(d.LedgerPath) != dir || cfg.Wallet.KeyFile != "payer.key" {
		t.Errorf("config files: %+v", cfg)
	}
	if len(cfg.Networks) != 1 || cfg.Networks[0].ID != "eip155:1337" || cfg.Networks[0].RPCURL != n.RPCURL {
		t.Errorf("networks = %+v, want eip155:1337 at %s", cfg.Networks, n.RPCURL)
	}
	if len(cfg.Discovery.Facilitators) != 1 || cfg.Discovery.Facilitators[0] != n.FacilitatorURL {
		t.Errorf("discovery.facilitators = %v, want [%s]", cfg.Discovery.Facilitators, n.FacilitatorURL)
	}
	if apiHost := strings.Split(strings.TrimPrefix(n.APIURL, "http://"), ":")[0]; len(cfg.HTTP.AllowPrivate) != 1 || cfg.HTTP.AllowPrivate[0] != apiHost {
		t.Errorf("http.allow_private = %v, want the paid API's address [%s]", cfg.HTTP.AllowPrivate, apiHost)
	}
	if len(cfg.Tokens) != 1 {
		t.Fatalf("tokens = %+v", cfg.Tokens)
	}
	if tk := cfg.Tokens[0]; tk.Network != "eip155:1337" || tk.Address != n.Chain.TokenAddress().Hex() || tk.Symbol != "USDC" ||
		tk.Name != n.Chain.TokenName() || tk.Version != n.Chain.TokenVersion() || tk.Decimals != 6 || tk.Currency != "USD" {
		t.Errorf("token = %+v", tk)
	}

	// The key file is signer's format, and holds the funded payer's key.
	key, err := signer.LoadHexFile(d.KeyPath)
	if err != nil {
		t.Fatalf("LoadHexFile: %v", err)
	}
	if key.Address() != d.Payer {
		t.Fatalf("payer.key is %s, payer is %s", key.Address(), d.Payer)
	}
	// The policy parses against a registry holding the devnet token.
	reg := tokens.Builtin()
	if err := reg.Add(d.Token); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(d.PolicyPath, reg)
	if err != nil {
		t.Fatalf("policy.toml: %v", err)
	}
	if p.MaxPerPayment.Cmp(policy.MustUSD("0.10")) != 0 || p.ApprovalAbove.Cmp(policy.MustUSD("0.025")) != 0 ||
		p.Budget.Day.Cmp(policy.MustUSD("1.00")) != 0 || len(p.Networks) != 1 || p.Networks[0] != "eip155:1337" {
		t.Errorf("policy = %+v", p)
	}

	// What the MCP server will see over JSON-RPC: the payer's USDC and no
	// native coin (the facilitator pays the gas).
	ec := dial(t, cfg.Networks[0].RPCURL)
	tok := token.NewToken()
	got, err := bind.Call(tok.Instance(ec, d.Token.Address), &bind.CallOpts{Context: ctx}, tok.PackBalanceOf(d.Payer), tok.UnpackBalanceOf)
	if err != nil || got.Cmp(localnet.DefaultDevnetFund) != 0 || d.Funded.Cmp(got) != 0 {
		t.Fatalf("payer balance over RPC = %v, %v; want %v", got, err, localnet.DefaultDevnetFund)
	}
	if eth, err := ec.BalanceAt(ctx, d.Payer, nil); err != nil || eth.Sign() != 0 {
		t.Fatalf("payer native balance = %v, %v; want 0", eth, err)
	}
	// The facilitator named for discovery lists the paid API.
	resp, err := http.Get(cfg.Discovery.Facilitators[0] + "/discovery/resources?type=http")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: status %d", resp.StatusCode)
	}
}

// TestDevnetRestart: a second run in the same directory replaces every file
// with the new chain's, and leaves no temporary files behind.
func TestDevnetRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startDevnet(t, dir)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// The first run's MCP server wrote its ledger (and an older version's
	// ledger.db is there too).
	for _, f := range []string{first.LedgerPath, first.LedgerPath + "-wal", filepath.Join(dir, "ledger.db")} {
		if err := os.WriteFile(f, []byte("spending on a chain that is gone"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second := startDevnet(t, dir)
	if second.LedgerPath == first.LedgerPath || len(second.OldLedgers) != 2 {
		t.Fatalf("the second run's ledger %s (first %s), removed %v", second.LedgerPath, first.LedgerPath, second.OldLedgers)
	}
	if second.Payer == first.Payer {
		t.Fatal("the second run kept the first payer")
	}
	key, err := signer.LoadHexFile(second.KeyPath)
	if err != nil || key.Address() != second.Payer {
		t.Fatalf("payer.key after restart: %v, %v; want %s", key, err, second.Payer)
	}
	cfg, _ := readDevnetConfig(t, second.ConfigPath)
	if cfg.Networks[0].RPCURL != second.Network.RPCURL || cfg.Tokens[0].Address != second.Token.Address.Hex() {
		t.Fatalf("config.toml after restart still names the first run: %+v", cfg)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "config.toml payer.key policy.toml" {
		t.Fatalf("directory holds %v", names)
	}
}

// TestDevnetRefusesForeignFiles: a directory holding a config, key or policy
// that no devnet wrote is left exactly as it was, and nothing is started.
func TestDevnetRefusesForeignFiles(t *testing.T) {
	t.Parallel()
	for name, files := range map[string]map[string]string{
		"config":           {"config.toml": "# my real config\npolicy_file = \"policy.toml\"\n"},
		"marker not first": {"config.toml": "policy_file = \"p.toml\"\n" + localnet.DevnetMarker + "\n"},
		"empty config":     {"config.toml": ""},
		"key alone":        {"payer.key": "0x" + strings.Repeat("ab", 32) + "\n"},
		"policy alone":     {"policy.toml": "max_per_payment = \"5\"\n"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for f, content := range files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d, err := localnet.StartDevnet(testCtx(t), localnet.DevnetConfig{Dir: dir, Addrs: loopbackAddrs, WriteKey: writeKey})
			if err == nil {
				d.Close()
				t.Fatal("StartDevnet overwrote a foreign directory")
			}
			if !errors.Is(err, localnet.ErrNotDevnetDir) {
				t.Fatalf("err = %v, want ErrNotDevnetDir", err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != len(files) {
				t.Errorf("directory now holds %d files, want %d", len(entries), len(files))
			}
			for f, content := range files {
				if got, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(got) != content {
					t.Errorf("%s changed: %q, %v", f, got, err)
				}
			}
		})
	}
}

func TestDevnetRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "devnet")
	_, err := localnet.StartDevnet(testCtx(t), localnet.DevnetConfig{Dir: dir, Addrs: localnet.ListenAddrs{RPC: "0.0.0.0:8545"}, WriteKey: writeKey})
	if !errors.Is(err, localnet.ErrNotLoopback) || !strings.Contains(err.Error(), "0.0.0.0:8545") {
		t.Fatalf("err = %v, want ErrNotLoopback naming the address", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the directory was created for a refused start: %v", err)
	}
}

// writeKey is the server's own key-file writer, as the devnet command
// passes it.
func writeKey(path string, key *ecdsa.PrivateKey) error {
	return signer.NewKey(key).WriteHexFile(path)
}

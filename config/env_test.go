package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/x402-mcp/x402-mcp/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// secret stands for an API key inside an RPC URL; no message may show it.
const secret = "SECRETKEY0123"

// golden compares got with testdata/name, or rewrites it under -update.
// The files are what an operator reads, so a change to any message shows
// up in review as a diff of the text itself.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./config -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run go test ./config -update and review the diff):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// TestNewKeyErrors checks every mistake in [[networks]] and [discovery]:
// file, line, key, message and hint.
func TestNewKeyErrors(t *testing.T) {
	cases := []struct{ name, doc string }{
		{"network without id", "[[networks]]\nrpc_url = \"https://mainnet.base.org\"\n"},
		{"network id not caip-2", "[[networks]]\nid = \"base\"\nrpc_url = \"https://mainnet.base.org\"\n"},
		{"network not evm", "[[networks]]\nid = \"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp\"\n"},
		{"network id with leading zero", "[[networks]]\nid = \"eip155:08453\"\n"},
		{"network id not a string", "[[networks]]\nid = 8453\n"},
		{"duplicate network", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://mainnet.base.org\"\n\n[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://base.llamarpc.com\"\n"},
		{"unknown key in a network", "[[networks]]  # Base\nid = \"eip155:8453\"\nrpc = \"https://mainnet.base.org\"\n"},
		{"network after tokens", "[[tokens]]\nnetwork = \"eip155:1337\"\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nname = \"A\"\nversion = \"1\"\ndecimals = 6\n\n[[networks]]   # the local chain\nid = \"eip155:1337\"\nrpc_url = \"ftp://127.0.0.1:8545\"\n"},
		{"rpc url without rpc_url", "[[networks]]\nid = \"eip155:8453\"\n"},
		{"rpc url with user info", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://user:" + secret + "@rpc.example.com/v1\"\n"},
		{"rpc url plain http to another machine", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"http://rpc.example.com/v2/" + secret + "\"\n"},
		{"rpc url plain ws to another machine", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"ws://rpc.example.com?key=" + secret + "\"\n"},
		{"rpc url without host", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https:///v2/" + secret + "\"\n"},
		{"rpc url bad port", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://rpc.example.com:99999/" + secret + "\"\n"},
		{"rpc url not a url", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://rpc.example.com/%zz" + secret + "\"\n"},
		{"rpc url with fragment", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://rpc.example.com/v2#" + secret + "\"\n"},
		{"facilitators not a list", "[discovery]\nfacilitators = \"https://x402.org/facilitator\"\n"},
		{"facilitator with query", "[discovery]\nfacilitators = [\"https://x402.org/facilitator\", \"https://f.example.com/?key=" + secret + "\"]\n"},
		{"facilitator over ws", "[discovery]\nfacilitators = [\"wss://f.example.com\"]\n"},
		{"facilitator twice", "[discovery]\nfacilitators = [\n  \"https://x402.org/facilitator\",\n  \"https://x402.org/facilitator/\",\n]\n"},
		{"cache seconds zero", "[discovery]\ncache_seconds = 0\n"},
		{"cache seconds too large", "[discovery]\n\ncache_seconds = 86401\n"},
		{"cache seconds as string", "[discovery]\ncache_seconds = \"300\"\n"},
		{"ledger reconcile zero", "ledger = \"l.db\"\nledger_reconcile_seconds = 0\n"},
		{"ledger reconcile too large", "ledger_reconcile_seconds = 3601\n"},
		{"catalog twice", "[discovery]\ncatalogs = [\"catalog.toml\", \"./catalog.toml\"]\n"},
		{"catalog empty", "[discovery]\ncatalogs = [\"\"]\n"},
		{"allow_private a name", "[http]\nallow_private = [\"127.0.0.1\", \"localhost\"]\n"},
		{"allow_private host bits", "[http]\ntimeout_seconds = 10\nallow_private = [\"10.1.2.3/24\"]\n"},
		{"allow_private with port", "[http]\nallow_private = [\"127.0.0.1:8080\"]\n"},
		{"allow_private twice", "[http]\nallow_private = [\"127.0.0.1\", \"::ffff:127.0.0.1\"]\n"},
		{"allow_private not a list", "[http]\nallow_private = \"127.0.0.1\"\n"},
	}
	var out strings.Builder
	for _, tc := range cases {
		_, err := Parse("/etc/x402-mcp/config.toml", []byte(tc.doc))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the message shows the secret: %v", tc.name, err)
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Line == 0 || ce.Key == "" {
			t.Errorf("%s: error lacks a line or key: %#v", tc.name, err)
		}
		fmt.Fprintf(&out, "## %s\n%s\n\n", tc.name, err)
	}
	golden(t, "errors.golden", out.String())
}

// env is a fake environment.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// TestEnvErrors checks that a bad override names its variable and never
// shows a URL's secret.
func TestEnvErrors(t *testing.T) {
	dir := t.TempDir()
	badPolicy := filepath.Join(dir, "policy.toml")
	write(t, badPolicy, "max_per_payment = \"0.10\"\n[budget]\nday = 1\n")
	cfgWithNet := filepath.Join(dir, "net.toml")
	write(t, cfgWithNet, "[[networks]]\nid = \"eip155:8453\"\n")
	cases := []struct {
		name string
		path string
		env  env
	}{
		{"config path relative", "", env{EnvConfig: "config.toml"}},
		{"config file missing", "", env{EnvConfig: "/nonexistent/x402-mcp/config.toml"}},
		{"ledger relative", "", env{EnvLedger: "ledger.db"}},
		{"key file and keystore", "", env{EnvKeyFile: "/k/payer.key", EnvKeystore: "/k/keystore.json"}},
		{"key file with passphrase", "", env{EnvKeyFile: "/k/payer.key", EnvPassphraseFile: "/k/pass"}},
		{"keystore without passphrase", "", env{EnvKeystore: "/k/keystore.json"}},
		{"passphrase without keystore", "", env{EnvPassphraseFile: "/k/pass"}},
		{"facilitator bad scheme", "", env{EnvFacilitators: "https://x402.org/facilitator, ftp://f.example.com"}},
		{"facilitator empty element", "", env{EnvFacilitators: "https://x402.org/facilitator,,https://f.example.com"}},
		{"facilitator plain http", "", env{EnvFacilitators: "http://f.example.com/" + secret}},
		{"rpc with user info", "", env{EnvRPCPrefix + "8453": "https://me:" + secret + "@rpc.example.com"}},
		{"rpc plain http", "", env{EnvRPCPrefix + "84532": "http://10.0.0.5:8545/" + secret}},
		{"policy file broken", "", env{EnvPolicyFile: badPolicy}},
		{"network still without rpc_url", cfgWithNet, env{EnvRPCPrefix + "84532": "https://sepolia.base.org"}},
	}
	var out strings.Builder
	for _, tc := range cases {
		_, err := LoadWithEnv(tc.path, tc.env.get)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), dir, "$DIR")
		if strings.Contains(msg, secret) {
			t.Errorf("%s: the message shows the secret: %v", tc.name, err)
		}
		fmt.Fprintf(&out, "## %s\n%s\n\n", tc.name, msg)
	}
	golden(t, "env_errors.golden", out.String())

	// The policy error keeps its type under the variable's name.
	_, err := LoadWithEnv("", env{EnvPolicyFile: badPolicy}.get)
	var pe *policy.FileError
	if !errors.As(err, &pe) || pe.Line != 3 {
		t.Errorf("policy error lost its type or line: %#v", err)
	}
}

// TestEnvOverrides shows what each variable does to a file's values.
func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "policy.toml"), "max_per_payment = \"0.05\"\n")
	write(t, filepath.Join(dir, "env-policy.toml"), "max_per_payment = \"0.02\"\n")
	cfg := filepath.Join(dir, "config.toml")
	write(t, cfg, `policy_file = "policy.toml"
ledger = "ledger.db"

[wallet]
keystore = "keystore.json"
passphrase_file = "passphrase"

[[networks]]
id = "eip155:84532"
rpc_url = "https://sepolia.base.org"

[[networks]]
id = "eip155:1337"   # no token: reachable only through the file
rpc_url = "http://127.0.0.1:8545"

[discovery]
facilitators = ["https://x402.org/facilitator/"]
catalogs = ["catalog.toml", "~/x402/more.toml"]
cache_seconds = 60
`)
	cases := []struct {
		name string
		path string
		env  env
	}{
		{"file only", cfg, env{}},
		{"file named by X402_MCP_CONFIG", "", env{EnvConfig: cfg}},
		{"--config wins over X402_MCP_CONFIG", cfg, env{EnvConfig: "/nonexistent.toml"}},
		{"no file, defaults", "", env{}},
		{"every override", cfg, env{
			EnvPolicyFile:          filepath.Join(dir, "env-policy.toml"),
			EnvLedger:              "/var/lib/x402-mcp/ledger.db",
			EnvKeystore:            "/run/secrets/keystore.json",
			EnvPassphraseFile:      "/run/secrets/passphrase",
			EnvFacilitators:        "https://x402.org/facilitator, https://facilitator.example.com/x402/",
			EnvRPCPrefix + "84532": "wss://sepolia.example.com/ws",
			EnvRPCPrefix + "8453":  "https://base.example.com/v2/key",
			EnvRPCPrefix + "1337":  "ws://localhost:8546",
			EnvRPCPrefix + "999":   "https://ignored.example.com",
		}},
		{"key file replaces the file's keystore", cfg, env{EnvKeyFile: "~/keys/payer.key"}},
		{"passphrase file alone", cfg, env{EnvPassphraseFile: "/run/secrets/other"}},
		{"defaults with env", "", env{EnvKeyFile: "/k/payer.key", EnvRPCPrefix + "8453": "https://mainnet.base.org"}},
	}
	home, _ := os.UserHomeDir()
	var out strings.Builder
	for _, tc := range cases {
		c, err := LoadWithEnv(tc.path, tc.env.get)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		s := describe(c)
		s = strings.ReplaceAll(s, dir, "$DIR")
		if home != "" {
			s = strings.ReplaceAll(s, home, "$HOME")
		}
		fmt.Fprintf(&out, "## %s\n%s\n", tc.name, s)
	}
	golden(t, "env_overrides.golden", out.String())
}

// describe renders the parts of a Config the overrides touch.
func describe(c *Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "path: %s\npolicy: %s (max_per_payment %s)\nledger: %s\n", c.Path, c.PolicyPath, c.Policy.MaxPerPayment, c.LedgerPath)
	fmt.Fprintf(&b, "wallet: keystore=%q passphrase_file=%q key_file=%q\n", c.Wallet.Keystore, c.Wallet.PassphraseFile, c.Wallet.KeyFile)
	for _, n := range c.Networks {
		fmt.Fprintf(&b, "network: %s chain %s rpc %s\n", n.ID, n.ChainID, n.RPCURL)
	}
	fmt.Fprintf(&b, "facilitators: %q\ncatalogs: %q\ncache: %s\n", c.Facilitators, c.Catalogs, c.CacheTTL)
	return b.String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestNetworkRedacts checks that no rendering of a Network or a Config
// shows the RPC URL's key.
func TestNetworkRedacts(t *testing.T) {
	c, err := LoadWithEnv("", env{EnvRPCPrefix + "8453": "https://base-mainnet.example.com/v2/" + secret + "?apikey=" + secret}.get)
	if err != nil {
		t.Fatal(err)
	}
	n := c.Networks[0]
	if !strings.Contains(n.RPCURL, secret) {
		t.Fatal("the URL itself must stay usable")
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("dial", "network", n, "networks", c.Networks)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("dial", "network", n)
	for _, s := range []string{
		fmt.Sprint(n), fmt.Sprintf("%v %+v %#v %s %q", n, n, n, n, n), fmt.Sprintf("%v %+v", c, *c), fmt.Sprintf("%+v", c.Networks), logs.String(),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("rendering shows the key: %s", s)
		}
	}
	if got := n.String(); got != "eip155:8453 via https://base-mainnet.example.com/…" {
		t.Errorf("String() = %q", got)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://mainnet.base.org":                  "https://mainnet.base.org",
		"https://mainnet.base.org/":                 "https://mainnet.base.org",
		"wss://a.example.com:8546/ws/" + secret:     "wss://a.example.com:8546/…",
		"https://u:" + secret + "@a.example.com":    "https://…@a.example.com",
		"https://a.example.com?k=" + secret:         "https://a.example.com/…",
		"https://a.example.com/%zz" + secret:        "(URL not shown)",
		secret:                                      "(URL not shown)",
		"":                                          `""`,
		"http://[::1]:8545":                         "http://[::1]:8545",
		"HTTPS://A.example.com/#" + secret:          "https://A.example.com/…",
		"https://a.example.com/" + secret + "#frag": "https://a.example.com/…",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoopbackURLs(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8545", "http://localhost:8545/rpc", "ws://[::1]:8546", "http://127.8.9.1"} {
		if _, p := checkURL(u, rpcURL); p != nil {
			t.Errorf("%s refused: %s", u, p.msg)
		}
	}
	for _, u := range []string{"http://10.0.0.1:8545", "http://localhost.example.com", "ws://0.0.0.0:8546", "http://[::2]:1"} {
		if _, p := checkURL(u, rpcURL); p == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestDiscoveryValues(t *testing.T) {
	c, err := Parse("/etc/x402-mcp/config.toml", []byte("[discovery]\nfacilitators = [\"https://x402.org/facilitator/\", \"http://127.0.0.1:4021\"]\ncatalogs = [\"catalog.toml\", \"/srv/catalog.toml\"]\ncache_seconds = 30\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Facilitators); got != "[https://x402.org/facilitator http://127.0.0.1:4021]" {
		t.Errorf("facilitators = %s", got)
	}
	if got := fmt.Sprint(c.Catalogs); got != "[/etc/x402-mcp/catalog.toml /srv/catalog.toml]" {
		t.Errorf("catalogs = %s", got)
	}
	if c.CacheTTL.Seconds() != 30 {
		t.Errorf("cache = %v", c.CacheTTL)
	}
	c, err = Parse("c.toml", nil)
	if err != nil || c.CacheTTL != DefaultCacheTTL || Default().CacheTTL != DefaultCacheTTL {
		t.Errorf("default cache TTL: %v %v", c, err)
	}
}

func TestCheckEnvNames(t *testing.T) {
	environ := []string{"PATH=/bin", "X402_PRIVATE_KEY=not-ours", "X402_MCP_LEDGER=/l", "X402_MCP_RPC_8453=https://mainnet.base.org", "X402_MCP_FACILITATORS="}
	c, err := LoadWithEnv("", func(k string) string {
		for _, kv := range environ {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckEnvNames(environ); err != nil {
		t.Errorf("used variables refused: %v", err)
	}
	var out strings.Builder
	for _, extra := range []string{"X402_MCP_POLCY_FILE=/p", "X402_MCP_RPC_BASE=https://a", "X402_MCP_RPC_0=https://a", "X402_MCP_RPC_999=https://a"} {
		err := c.CheckEnvNames(append(environ, extra))
		if err == nil {
			t.Errorf("%s accepted", extra)
			continue
		}
		fmt.Fprintf(&out, "## %s\n%s\n\n", extra, err)
	}
	golden(t, "env_names.golden", out.String())
}

// TestLedgerURL checks that a PostgreSQL ledger URL is taken as written,
// from the file and from the environment, and that one holding a password
// is refused without the password appearing anywhere in the error.
func TestLedgerURL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	const good = "postgres://x402@db.internal:5432/x402?sslmode=verify-full"
	if err := os.WriteFile(path, []byte("ledger = \""+good+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil || c.LedgerPath != good {
		t.Fatalf("ledger %q, err %v; want %q", c.LedgerPath, err, good)
	}
	if c, err := LoadWithEnv("", func(k string) string {
		if k == EnvLedger {
			return "postgresql://x402@db/x402"
		}
		return ""
	}); err != nil || c.LedgerPath != "postgresql://x402@db/x402" {
		t.Fatalf("from the environment: %v", err)
	}
	const secret = "hunter2-s3cret"
	for _, bad := range []string{
		"postgres://x402:" + secret + "@db/x402",
		"postgres://x402@db/x402?password=" + secret,
		"postgres://x402@db/x402?sslmode=disable&PASSWORD=" + secret,
	} {
		if err := os.WriteFile(path, []byte("ledger = \""+bad+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "pgpass") {
			t.Errorf("%s: err %v; want a refusal naming ~/.pgpass without the password", bad, err)
		}
		_, err = LoadWithEnv("", func(k string) string {
			if k == EnvLedger {
				return bad
			}
			return ""
		})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("env %s: err %v; want a refusal without the password", bad, err)
		}
	}
	for _, bad := range []string{"postgres:///x402", "postgres://x402@db"} {
		if err := os.WriteFile(path, []byte("ledger = \""+bad+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

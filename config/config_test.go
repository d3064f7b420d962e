package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

const good = `ledger = "ledger.db"

[wallet]
key_file = "payer.key"

[http]
timeout_seconds = 30
max_response_bytes = 1000

[[tokens]]
network = "eip155:1337"
address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
symbol = "USDC"
name = "USD Coin"
version = "2"
decimals = 6
currency = "USD"
`

func TestParseGood(t *testing.T) {
	c, err := Parse("/etc/x402/config.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Wallet.KeyFile != "/etc/x402/payer.key" {
		t.Errorf("key file not resolved against the config's directory: %q", c.Wallet.KeyFile)
	}
	if c.LedgerPath != "/etc/x402/ledger.db" || c.PolicyPath != "" || c.Policy.MaxPerPayment.String() != "0.1" {
		t.Errorf("ledger %q, policy %q %+v", c.LedgerPath, c.PolicyPath, c.Policy)
	}
	if c.Timeout != 30*time.Second || c.MaxBody != 1000 {
		t.Errorf("http = %v %v", c.Timeout, c.MaxBody)
	}
	if c.AllowPrivate != nil {
		t.Errorf("http.allow_private defaults to %v, want none", c.AllowPrivate)
	}
	if c.KnownTerms != DefaultKnownTerms || Default().KnownTerms != DefaultKnownTerms {
		t.Errorf("http.known_terms_seconds defaults to %v, want %v", c.KnownTerms, DefaultKnownTerms)
	}
	for doc, want := range map[string]time.Duration{"[http]\nknown_terms_seconds = 0\n": 0, "[http]\nknown_terms_seconds = 60\n": time.Minute} {
		if kt, err := Parse("c.toml", []byte(doc)); err != nil || kt.KnownTerms != want {
			t.Errorf("%q: known terms %v, %v; want %v", doc, kt, err, want)
		}
	}
	ap, err := Parse("c.toml", []byte("[http]\nallow_private = [\"127.0.0.1\", \"10.1.2.0/24\", \" ::1 \", \"::ffff:192.168.1.0/120\"]\n"))
	if err != nil || fmt.Sprint(ap.AllowPrivate) != "[127.0.0.1/32 10.1.2.0/24 ::1/128 192.168.1.0/24]" {
		t.Errorf("http.allow_private = %v, %v", ap, err)
	}
	tok, ok := c.Registry.Lookup("eip155:1337", common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"))
	if !ok || tok.Decimals != 6 || tok.Name != "USD Coin" || tok.Currency != "USD" {
		t.Errorf("extra token = %+v, %v", tok, ok)
	}
	if _, ok := c.Registry.Lookup("eip155:8453", common.HexToAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")); !ok {
		t.Error("built-in tokens lost when adding one")
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("c.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.MaxPerPayment.String() != "0.1" || c.Policy.MaxWindow != 5*time.Minute {
		t.Errorf("default policy = %+v", c.Policy)
	}
	if !c.OutOfBandApproval || c.ApprovalTTL != 10*time.Minute {
		t.Errorf("default approvals: out of band %v, valid %s", c.OutOfBandApproval, c.ApprovalTTL)
	}
	c, err = Parse("c.toml", []byte("[approvals]\nout_of_band = false\nvalid_seconds = 120\n"))
	if err != nil || c.OutOfBandApproval || c.ApprovalTTL != 2*time.Minute {
		t.Errorf("[approvals] out_of_band = false, valid_seconds = 120: %v, %v, %s", err, c.OutOfBandApproval, c.ApprovalTTL)
	}
	if c.ReconcileInterval != 30*time.Second || Default().ReconcileInterval != 30*time.Second {
		t.Errorf("default reconcile interval %s, %s", c.ReconcileInterval, Default().ReconcileInterval)
	}
	c, err = Parse("c.toml", []byte("ledger_reconcile_seconds = 5\n"))
	if err != nil || c.ReconcileInterval != 5*time.Second {
		t.Errorf("ledger_reconcile_seconds = 5: %v, %s", err, c.ReconcileInterval)
	}
}

// TestErrors checks that every mistake names the file, the line and the key.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown key", "[wallet]\nkey_fil = \"1\"\n", "c.toml:2: wallet.key_fil: unknown key"},
		{"unknown table", "[polcy]\nx = 1\n", "c.toml:1: polcy: unknown key"},
		{"policy is a file now", "[policy]\nmax_per_payment = \"1\"\n", "c.toml:1: policy: unknown key"},
		{"duplicate key", "[http]\ntimeout_seconds = 1\ntimeout_seconds = 2\n", "c.toml:3: http.timeout_seconds: key timeout_seconds is already defined"},
		{"float for int", "[http]\ntimeout_seconds = 1.5\n", "c.toml:2: http.timeout_seconds: expected a whole number, found a float"},
		{"string for int", "[http]\ntimeout_seconds = \"30\"\n", "c.toml:2: http.timeout_seconds: expected a whole number, found a string"},
		{"timeout range", "[http]\n\ntimeout_seconds = 601\n", "c.toml:3: http.timeout_seconds: out of range (value not shown)"},
		{"known terms range", "[http]\nknown_terms_seconds = -1\n", "c.toml:2: http.known_terms_seconds: out of range (value not shown)"},
		{"known terms too long", "[http]\nknown_terms_seconds = 86401\n", "c.toml:2: http.known_terms_seconds: out of range (value not shown)"},
		{"missing policy file", "policy_file = \"nope.toml\"\n", "nope.toml"},
		{"two key sources", "[wallet]\nkeystore = \"k\"\npassphrase_file = \"p\"\nkey_file = \"f\"\n", "c.toml:4: wallet.key_file: both keystore and key_file are set"},
		{"keystore without passphrase", "[wallet]\nkeystore = \"k\"\n", "c.toml:2: wallet.keystore: a keystore needs passphrase_file"},
		{"token without decimals", "[[tokens]]\nnetwork = \"eip155:1\"\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nname = \"A\"\nversion = \"1\"\n", "c.toml:1: tokens[0]: decimals is missing"},
		{"token bad address", "[[tokens]]\nnetwork = \"eip155:1\"\naddress = \"0x5FbD\"\nname = \"A\"\nversion = \"1\"\ndecimals = 6\n", "c.toml:1: tokens[0]: address is not a 0x-prefixed 20-byte hex address (value not shown)"},
		{"second token", good + "\n[[tokens]]\nnetwork = \"eip155:1\"\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nversion = \"1\"\ndecimals = 6\n", "c.toml:19: tokens[1]: token 0x5FbDB2315678afecb367f032d93F642f64180aa3 on eip155:1: EIP-712 name is empty"},
		{"decimals as string", "[[tokens]]\nnetwork = \"eip155:1\"\ndecimals = \"6\"\n", "c.toml:3: tokens[0].decimals: expected a whole number, found a string"},
		{"not toml", "[policy\n", "c.toml:1"},
		{"approval validity too short", "[approvals]\nvalid_seconds = 5\n", "c.toml:2: approvals.valid_seconds: out of range (value not shown)"},
		{"approval switch as string", "[approvals]\nout_of_band = \"no\"\n", "c.toml:2: approvals.out_of_band"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.toml", []byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), tc.want) && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadBoundsAndMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", maxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}

// TestExampleConfigParses keeps examples/config.toml valid.
func TestExampleConfigParses(t *testing.T) {
	if _, err := Load("../examples/config.toml"); err != nil {
		t.Fatal(err)
	}
}

// TestExplorer: a network's explorer is an optional https (or loopback
// http) transaction URL prefix; a bad one is refused on its line.
func TestExplorer(t *testing.T) {
	c, err := Parse("c.toml", []byte("[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://mainnet.base.org\"\nexplorer = \"https://basescan.org/tx/\"\n\n[[networks]]\nid = \"eip155:84532\"\nrpc_url = \"https://sepolia.base.org\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Networks) != 2 || c.Networks[0].Explorer != "https://basescan.org/tx/" || c.Networks[1].Explorer != "" {
		t.Errorf("explorers: %q %q", c.Networks[0].Explorer, c.Networks[1].Explorer)
	}
	for doc, want := range map[string]string{
		"explorer = \"http://basescan.org/tx/\"":      "c.toml:4: networks[0].explorer: URL http://basescan.org/… uses plain http to another machine",
		"explorer = \"javascript:alert(1)\"":          "c.toml:4: networks[0].explorer",
		"explorer = \"https://basescan.org/tx/?a=b\"": "has a query",
		"explorer = \"https://basescan.org/tx/#x\"":   "has a #fragment",
	} {
		_, err := Parse("c.toml", []byte("[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://mainnet.base.org\"\n"+doc+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
	if c, err := Parse("c.toml", []byte("[[networks]]\nid = \"eip155:1337\"\nrpc_url = \"http://127.0.0.1:8545\"\nexplorer = \"http://127.0.0.1:4000/tx/\"\n")); err != nil || c.Networks[0].Explorer != "http://127.0.0.1:4000/tx/" {
		t.Errorf("loopback explorer: %v", err)
	}
}

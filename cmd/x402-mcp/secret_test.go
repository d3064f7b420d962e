package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets of TestNoSecretEchoed: a private key (hex, as pasted from a
// wallet export), a recovery phrase and a passphrase, each placed where a
// path, a number or another value belongs.
const (
	pastedKey        = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
	pastedMnemonic   = "abandon ability able about above absent absorb abstract absurd abuse access accident"
	pastedPassphrase = "Tr0ub4dor-and-3-horses"
	pastedNumber     = "987654321987"
)

// leaks reports which form of a secret text shows: the key with and
// without 0x and its first 16 hex digits, the phrase and its first words,
// the passphrase, the number.
func leaks(text string) []string {
	var found []string
	for _, s := range []string{pastedKey, pastedKey[:16], strings.ToUpper(pastedKey[:16]), pastedKey[48:],
		pastedMnemonic, "abandon ability able", pastedPassphrase, pastedNumber} {
		if strings.Contains(text, s) {
			found = append(found, s)
		}
	}
	return found
}

// TestNoSecretEchoed runs the binary with a secret in every place an
// operator could paste one by mistake: the config's key, keystore and
// passphrase paths, the environment variables, numbers and values in the
// config and the policy, and the command line. Every run must fail (or
// refuse) without the secret in stdout or stderr, where the program's log
// goes too. The messages say what was expected instead.
func TestNoSecretEchoed(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		return writePrivate(t, filepath.Join(dir, name), content, 0o600)
	}
	keystore := write("keystore.json", "{}")
	goodPolicy := write("good-policy.toml", "max_per_payment = \"0.10\"\n")
	config := func(name, body string) string {
		return write(strings.NewReplacer("/", "_", "~", "_", " ", "_").Replace(name), body)
	}

	type run struct {
		name string
		env  []string
		args []string
		want string // what the message says instead, when it must say it
	}
	var runs []run
	add := func(name string, env []string, want string, args ...string) {
		runs = append(runs, run{name, env, args, want})
	}
	serveWith := func(name, cfgBody, want string) {
		add("config "+name, nil, want, "wallet", "address", "--config", config(name+".toml", cfgBody))
	}

	// The config file: key paths, numbers, values.
	for _, v := range []string{pastedKey, "0x" + pastedKey, "~/" + pastedKey, pastedMnemonic} {
		serveWith("key_file "+v[:3], "[wallet]\nkey_file = \""+v+"\"\n", "this looks like a private key, not a path")
		serveWith("keystore "+v[:3], "[wallet]\nkeystore = \""+v+"\"\npassphrase_file = \"pass.txt\"\n", "this looks like a private key, not a path")
	}
	serveWith("passphrase_file", "[wallet]\nkeystore = \""+keystore+"\"\npassphrase_file = \""+pastedPassphrase+"\"\n", "not shown")
	serveWith("passphrase_file key", "[wallet]\nkeystore = \""+keystore+"\"\npassphrase_file = \"0x"+pastedKey+"\"\n", "looks like a private key")
	serveWith("unquoted key", "[wallet]\nkey_file = 0x"+pastedKey+"\n", "")
	serveWith("key as a number", "[http]\ntimeout_seconds = 0x"+pastedKey+"\n", "")
	serveWith("key as a string number", "[http]\ntimeout_seconds = \"0x"+pastedKey+"\"\n", "expected a whole number")
	serveWith("number out of range", "[approvals]\nvalid_seconds = "+pastedNumber+"\n", "out of range (value not shown)")
	serveWith("number too large", "ledger_reconcile_seconds = "+pastedNumber+pastedNumber+"\n", "")
	serveWith("key as a key", "[wallet]\n"+pastedKey+" = \"x\"\n", "unknown key")
	serveWith("token address", "[[tokens]]\nnetwork = \"eip155:1\"\naddress = \"0x"+pastedKey+"\"\nname = \"A\"\nversion = \"1\"\ndecimals = 6\n", "value not shown")
	serveWith("rpc url", "[[networks]]\nid = \"eip155:8453\"\nrpc_url = \"https://rpc.example/"+pastedKey+"?k="+pastedPassphrase+" x\"\n", "")
	serveWith("policy_file", "policy_file = \""+pastedKey+"\"\n", "looks like a private key")

	// The policy file: amounts, numbers and values, through serve (as
	// policy_file) and through policy check.
	for name, body := range map[string]string{
		"amount":         "max_per_payment = \"0x" + pastedKey + "\"\n",
		"amount number":  "max_per_payment = \"" + pastedNumber + "x\"\n",
		"negative":       "[budget]\nday = \"-" + pastedNumber + "\"\n",
		"hex number":     "max_payments_per_minute = 0x" + pastedKey + "\n",
		"rate":           "max_payments_per_minute = " + pastedNumber + "\n",
		"window":         "max_authorization_seconds = " + pastedNumber + "\n",
		"float":          "approval_above = " + pastedNumber + ".5\n",
		"payee":          "[payees]\nallow = [\"0x" + pastedKey + "\"]\n",
		"host":           "[hosts]\nallow = [\"" + pastedKey + "\"]\n",
		"host mnemonic":  "[hosts]\ndeny = [\"" + pastedMnemonic + "\"]\n",
		"network":        "networks = [\"eip155:" + pastedKey + "\"]\n",
		"token":          "tokens = [\"eip155:8453/erc20:0x" + pastedKey + "\"]\n",
		"token limit":    "[token_limits.\"eip155:8453/erc20:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913\"]\nmax_per_payment = \"" + pastedNumber + ".1234567\"\n",
		"flow":           "payment_flows = [\"" + pastedKey + "\"]\n",
		"key as a key":   "[budget]\n" + pastedKey + " = \"1\"\n",
		"unquoted value": "max_per_payment = " + pastedKey + "\n",
	} {
		p := write("policy-"+strings.ReplaceAll(name, " ", "-")+".toml", body)
		add("policy check "+name, nil, "", "policy", "check", p)
		add("policy "+name, nil, "", "wallet", "address", "--config", config("policy-cfg-"+strings.ReplaceAll(name, " ", "-")+".toml", "policy_file = \""+p+"\"\n"))
	}

	// The environment.
	abs := filepath.Join(dir, "0x"+pastedKey)
	for _, name := range []string{"X402_MCP_KEY_FILE", "X402_MCP_KEYSTORE", "X402_MCP_PASSPHRASE_FILE", "X402_MCP_CONFIG",
		"X402_MCP_POLICY_FILE", "X402_MCP_LEDGER"} {
		for _, v := range []string{pastedKey, "0x" + pastedKey, abs, "~/" + pastedKey, pastedMnemonic, pastedPassphrase} {
			env := []string{name + "=" + v}
			if name == "X402_MCP_KEYSTORE" {
				env = append(env, "X402_MCP_PASSPHRASE_FILE="+filepath.Join(dir, "pass.txt"))
			}
			if name == "X402_MCP_PASSPHRASE_FILE" {
				env = append(env, "X402_MCP_KEYSTORE="+keystore)
			}
			add("env "+name+" "+v[:3], env, "", "wallet", "address")
		}
	}
	add("env passphrase file absolute", []string{"X402_MCP_KEYSTORE=" + keystore, "X402_MCP_PASSPHRASE_FILE=" + filepath.Join(dir, pastedPassphrase)},
		"the configured path is not shown", "wallet", "address")
	add("env private key", []string{"X402_PRIVATE_KEY=" + pastedKey + "zz"}, "", "wallet", "address")
	add("env private key short", []string{"X402_PRIVATE_KEY=" + pastedKey[:60]}, "", "wallet", "address")
	add("env facilitators", []string{"X402_MCP_FACILITATORS=" + pastedKey}, "", "wallet", "address")
	add("env facilitators url", []string{"X402_MCP_FACILITATORS=https://f.example/" + pastedKey + "?x=" + pastedPassphrase}, "", "wallet", "address")
	add("env rpc", []string{"X402_MCP_RPC_8453=" + pastedKey}, "", "wallet", "address")
	add("env rpc url", []string{"X402_MCP_RPC_8453=http://rpc.example/" + pastedKey}, "", "wallet", "address")
	add("env unknown chain", []string{"X402_MCP_RPC_" + pastedKey + "=x"}, "", "wallet", "address")
	add("env policy ok, key elsewhere", []string{"X402_MCP_POLICY_FILE=" + goodPolicy, "X402_MCP_KEY_FILE=" + abs}, "looks like a private key", "wallet", "address")

	// The command line.
	tokenFile := write("token", strings.Repeat("t", 40))
	for _, args := range [][]string{
		{pastedKey}, {"0x" + pastedKey}, {pastedMnemonic},
		{"serve", pastedKey}, {"serve", "--config", pastedKey}, {"serve", "--config", "0x" + pastedKey},
		{"serve", "--log-level", pastedKey}, {"serve", "--0x" + pastedKey}, {"serve", "--key=" + pastedKey},
		{"serve", "--allow-remote=" + pastedKey},
		{"serve", "--http", pastedKey, "--token-file", tokenFile},
		{"serve", "--http", "127.0.0.1:0", "--token-file", pastedKey},
		{"serve", "--http", "127.0.0.1:0", "--token-file", filepath.Join(dir, pastedPassphrase)},
		{"history", "-n", pastedKey}, {"history", "-n", pastedNumber}, {"history", "--json=" + pastedKey},
		{"history", "--config", pastedKey}, {"approvals", "-n", "0x" + pastedKey},
		{"approve", pastedKey, "--config", config("empty.toml", "")}, {"deny", "0x" + pastedKey, "--config", config("empty.toml", "")},
		{"policy", "check", pastedKey}, {"policy", "check", "0x" + pastedKey}, {"policy", "check", goodPolicy, "--config", pastedKey},
		{"wallet", "address", "--config", pastedKey}, {"wallet", pastedKey},
		{"init", "--passphrase-file", pastedKey, "--dir", filepath.Join(dir, "init1")},
		{"init", "--passphrase-file", filepath.Join(dir, pastedPassphrase), "--dir", filepath.Join(dir, "init2")},
		{"init", "--dir", filepath.Join(dir, pastedKey)}, {"init", pastedPassphrase},
		{"devnet", "--fund", pastedKey}, {"devnet", "--fund", pastedNumber + ".1234567"}, {"devnet", "--rpc", pastedKey},
		{"devnet", "--api", "10.0.0.1:" + pastedNumber}, {"devnet", pastedKey}, {"devnet", "--dir", pastedKey},
		{"demo", pastedKey},
	} {
		add("argv "+strings.Join(args, " "), nil, "", args...)
	}

	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			res := runBin(t, append([]string{"HOME=" + dir}, r.env...), r.args...)
			if res.code == 0 {
				t.Errorf("succeeded: %+v", res)
			}
			if found := leaks(res.stdout + res.stderr); len(found) > 0 {
				t.Errorf("the output shows %q:\nstdout: %s\nstderr: %s", found, res.stdout, res.stderr)
			}
			if r.want != "" && !strings.Contains(res.stderr, r.want) {
				t.Errorf("stderr lacks %q: %s", r.want, res.stderr)
			}
		})
	}
	// Nothing was created under a secret's name either.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if found := leaks(e.Name()); len(found) > 0 && !strings.HasPrefix(e.Name(), "policy-") {
			t.Errorf("a file was created named after a secret: %s", e.Name())
		}
	}
}

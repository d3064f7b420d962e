package main

import (
	"github.com/x402-mcp/x402-mcp/internal/shellquote"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/signer"
)

const initPass = "correct horse battery staple"

var (
	addressRE = regexp.MustCompile(`(?m)^\s+(0x[0-9a-fA-F]{40})$`)
	// hex64RE would match a raw private key (or anything as long) in any
	// spelling.
	hex64RE = regexp.MustCompile(`[0-9a-fA-F]{64}`)
)

// TestInit runs init with a passphrase file, then serves the result: the
// config it wrote must be one serve accepts, with the key it printed.
func TestInit(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "x402-mcp") // init creates it
	pass := writePrivate(t, filepath.Join(base, "pass"), initPass+"\n", 0o600)
	r := runBin(t, hermeticEnv(), "init", "--dir", dir, "--passphrase-file", pass)
	if r.code != 0 {
		t.Fatalf("init exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	m := addressRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no address in the output:\n%s", r.stdout)
	}
	addr := m[1]

	// What was written, and how private it is.
	if runtime.GOOS != "windows" {
		if st, err := os.Stat(dir); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != 0o700 {
			t.Errorf("directory has mode %04o, want 0700", st.Mode().Perm())
		}
		for _, f := range []string{"keystore.json", "config.toml", "policy.toml"} {
			if st, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			} else if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", f, st.Mode().Perm())
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "passphrase")); err == nil {
		t.Error("init copied a passphrase that came from a file")
	}
	ks, err := os.ReadFile(filepath.Join(dir, "keystore.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := gjson.GetBytes(ks, "crypto.kdfparams.n").Int(); n != 1<<18 || gjson.GetBytes(ks, "crypto.kdf").String() != "scrypt" {
		t.Errorf("keystore is not encrypted with the standard scrypt parameters: %s", ks)
	}
	if !strings.EqualFold("0x"+gjson.GetBytes(ks, "address").String(), addr) {
		t.Errorf("keystore address %s, printed %s", gjson.GetBytes(ks, "address"), addr)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	cfgText, _ := os.ReadFile(cfgPath)
	if !strings.Contains(string(cfgText), "passphrase_file = \""+pass+"\"") || !strings.Contains(string(cfgText), "[[networks]]") || !strings.Contains(string(cfgText), "[discovery]") {
		t.Errorf("config.toml:\n%s", cfgText)
	}

	// The keystore opens with the passphrase, to the printed address.
	key, err := signer.LoadKeystore(filepath.Join(dir, "keystore.json"), pass)
	if err != nil {
		t.Fatal(err)
	}
	if key.Address().Hex() != addr {
		t.Errorf("keystore holds %s, init printed %s", key.Address().Hex(), addr)
	}

	// serve accepts the config: tools are listed and the spending report
	// shows the starter policy, for the printed payer.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var serverLog syncBuffer
	c, err := startStdioClient(ctx, bin, cfgPath, &serverLog)
	if err != nil {
		t.Fatalf("%v\n%s", err, serverLog.String())
	}
	defer c.Close()
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) < 3 {
		t.Fatalf("tools/list: %v %+v", err, list)
	}
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "x402_spending", Arguments: map[string]any{}}})
	if err != nil || res.IsError {
		t.Fatalf("x402_spending: %v %s", err, resultText(res))
	}
	if out := structuredJSON(res); gjson.Get(out, "max_per_payment_usd").String() != "0.05" || gjson.Get(out, "approval_above_usd").String() != "0.02" {
		t.Errorf("the starter policy is not in force: %s", out)
	}
	if !strings.Contains(serverLog.String(), "payer="+addr) {
		t.Errorf("server payer is not the printed address %s:\n%s", addr, serverLog.String())
	}

	// The snippets name the binary and the config, and nothing secret.
	exe, _ := filepath.EvalSymlinks(bin)
	if want := "claude mcp add x402 -- " + shellquote.Quote(exe) + " serve --config " + shellquote.Quote(cfgPath); !strings.Contains(r.stdout, want) {
		t.Errorf("output lacks %q:\n%s", want, r.stdout)
	}
	blocks := jsonBlocks(r.stdout)
	if len(blocks) != 2 {
		t.Errorf("want 2 JSON snippets (Claude Desktop, Cursor), found %d:\n%s", len(blocks), r.stdout)
	}
	for _, b := range blocks {
		var doc struct {
			MCPServers map[string]struct {
				Command string   `json:"command"`
				Args    []string `json:"args"`
				Env     any      `json:"env"`
			} `json:"mcpServers"`
		}
		if err := json.Unmarshal([]byte(b), &doc); err != nil {
			t.Errorf("snippet is not JSON: %v\n%s", err, b)
			continue
		}
		s := doc.MCPServers["x402"]
		if s.Command != exe || strings.Join(s.Args, " ") != "serve --config "+cfgPath || s.Env != nil {
			t.Errorf("snippet: %+v", s)
		}
	}
	for _, secret := range []string{initPass, "ciphertext", `"mac"`} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("init output contains %q", secret)
		}
	}
	if hex64RE.MatchString(r.stdout + r.stderr) {
		t.Errorf("init output contains a 64-hex-digit string (a key?):\n%s", r.stdout)
	}

	// Running it again never replaces the keystore: without --force it
	// refuses; with --force it keeps the keystore and rewrites the config
	// and the policy for the same key, as the README says.
	again := runBin(t, hermeticEnv(), "init", "--dir", dir, "--passphrase-file", pass)
	if again.code == 0 || !strings.Contains(again.stderr, "keystore.json already exists") || !strings.Contains(again.stderr, "--force rewrites config.toml and policy.toml") {
		t.Errorf("init again: %+v", again)
	}
	if err := os.WriteFile(cfgPath, []byte("# edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	forced := runBin(t, hermeticEnv(), "init", "--dir", dir, "--passphrase-file", pass, "--force")
	if forced.code != 0 || !strings.Contains(forced.stdout, addr) || !strings.Contains(forced.stdout, "kept as it was") {
		t.Errorf("init --force over the keystore: %+v", forced)
	}
	if b, _ := os.ReadFile(cfgPath); !strings.Contains(string(b), "policy_file = ") {
		t.Errorf("--force did not rewrite the config:\n%s", b)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "keystore.json")); !bytes.Equal(now, ks) {
		t.Error("the keystore changed")
	}
	// A passphrase that does not unlock the keystore writes nothing.
	wrong := writePrivate(t, filepath.Join(base, "wrong"), "not the passphrase at all\n", 0o600)
	if r := runBin(t, hermeticEnv(), "init", "--dir", dir, "--passphrase-file", wrong, "--force"); r.code == 0 {
		t.Errorf("init --force with the wrong passphrase: %+v", r)
	}
	// The config names both networks' public endpoints, so wallet balance
	// works once the key is funded.
	b, _ := os.ReadFile(cfgPath)
	for _, want := range []string{"id = \"eip155:8453\"", "rpc_url = \"https://mainnet.base.org\"", "id = \"eip155:84532\"", "rpc_url = \"https://sepolia.base.org\""} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config lacks %s", want)
		}
	}
}

// jsonBlocks finds the multi-line JSON objects in text.
func jsonBlocks(text string) []string {
	var out []string
	var cur []string
	for _, line := range strings.Split(text, "\n") {
		switch {
		case line == "{":
			cur = []string{line}
		case line == "}" && cur != nil:
			out = append(out, strings.Join(append(cur, line), "\n"))
			cur = nil
		case cur != nil:
			cur = append(cur, line)
		}
	}
	return out
}

// TestInitForce: a config and policy left without their keystore are kept
// unless --force, which replaces them; init writes its own passphrase file
// only when none was given, and never replaces one.
func TestInitForce(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "cfg")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := writePrivate(t, filepath.Join(dir, "config.toml"), "# mine\n", 0o600)
	pass := writePrivate(t, filepath.Join(base, "pass"), initPass, 0o600)
	r := runBin(t, hermeticEnv(), "init", "--dir", dir, "--passphrase-file", pass)
	if r.code == 0 || !strings.Contains(r.stderr, "config.toml already exists") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("existing config: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "keystore.json")); err == nil {
		t.Error("a refused init left a keystore behind")
	}
	r = runBin(t, hermeticEnv(), "init", "--dir", dir, "--passphrase-file", pass, "--force")
	if r.code != 0 {
		t.Fatalf("--force: %+v", r)
	}
	if b, _ := os.ReadFile(old); !strings.Contains(string(b), "policy_file = \"policy.toml\"") {
		t.Errorf("--force did not replace the config:\n%s", b)
	}

	// A passphrase file of init's own name is never replaced.
	dir2 := filepath.Join(base, "cfg2")
	if err := os.MkdirAll(dir2, 0o700); err != nil {
		t.Fatal(err)
	}
	writePrivate(t, filepath.Join(dir2, "passphrase"), "someone else's passphrase\n", 0o600)
	r = runBin(t, hermeticEnv(), "init", "--dir", dir2, "--force")
	if r.code == 0 || !strings.Contains(r.stderr, "passphrase already exists") {
		t.Errorf("existing passphrase file: %+v", r)
	}
}

// TestInitRefusals covers the passphrase sources init refuses.
func TestInitRefusals(t *testing.T) {
	base := t.TempDir()
	short := writePrivate(t, filepath.Join(base, "short"), "eleven-char\n", 0o600)
	open := writePrivate(t, filepath.Join(base, "open"), initPass, 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		// runBin gives the child no stdin, which is not a terminal.
		{"no passphrase source", nil, 1, []string{"stdin is not a terminal", "hint:", "--passphrase-file"}},
		{"short passphrase", []string{"--passphrase-file", short}, 1, []string{"too short (11 characters; at least 12)"}},
		{"passphrase file readable by others", []string{"--passphrase-file", open}, 1, []string{"chmod 600 " + open}},
		{"missing passphrase file", []string{"--passphrase-file", filepath.Join(base, "nope")}, 1, []string{"cannot open the passphrase file"}},
		{"passphrase on argv", []string{initPass}, 2, []string{"never passed on the command line"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "passphrase file readable by others" && runtime.GOOS == "windows" {
				t.Skip("no group/other mode bits on Windows")
			}
			dir := filepath.Join(base, strings.ReplaceAll(tc.name, " ", "-"))
			r := runBin(t, hermeticEnv(), append([]string{"init", "--dir", dir}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, tc.code, r.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if strings.Contains(r.stderr+r.stdout, initPass) {
				t.Errorf("the passphrase is echoed:\n%s", r.stderr)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("a refused init created %s", dir)
			}
		})
	}
}

// TestInitTerminal types the passphrase on a real terminal (a pty made by
// util-linux script(1)): asked twice, written to init's own passphrase
// file, and two different answers are refused.
func TestInitTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if runtime.GOOS != "linux" || err != nil {
		t.Skip("needs util-linux script(1) for a pseudo-terminal")
	}
	base := t.TempDir()
	typeIn := func(dir string, answers ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(script, "-qfec", shellquote.Quote(bin)+" init --dir "+shellquote.Quote(dir), "/dev/null")
		cmd.Env = hermeticEnv()
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var seen bytes.Buffer
		buf := make([]byte, 4096)
		prompts := []string{"Passphrase for the new keystore", "Same passphrase again"}
		for len(answers) > 0 {
			n, err := out.Read(buf)
			seen.Write(buf[:n])
			if err != nil {
				break
			}
			// Answer each prompt once it is on the screen, so the answer
			// never arrives before the program reads it.
			if strings.Count(seen.String(), prompts[0]) > 0 {
				time.Sleep(100 * time.Millisecond)
				io.WriteString(in, answers[0]+"\r")
				answers, prompts = answers[1:], prompts[1:]
				if len(prompts) == 0 {
					prompts = []string{"\x00never"}
				}
			}
		}
		rest, _ := io.ReadAll(out)
		seen.Write(rest)
		in.Close()
		code := 0
		if err := cmd.Wait(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatal(err)
			}
			code = ee.ExitCode()
		}
		return seen.String(), code
	}

	dir := filepath.Join(base, "ok")
	out, code := typeIn(dir, initPass, initPass)
	if code != 0 || !strings.Contains(out, "Wallet address") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if strings.Contains(out, initPass) {
		t.Errorf("the passphrase was echoed:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "passphrase")); err != nil || string(b) != initPass+"\n" {
		t.Errorf("passphrase file: %q %v", b, err)
	}
	if cfg, _ := os.ReadFile(filepath.Join(dir, "config.toml")); !strings.Contains(string(cfg), `passphrase_file = "passphrase"`) {
		t.Errorf("config does not name init's passphrase file:\n%s", cfg)
	}

	dir = filepath.Join(base, "mismatch")
	out, code = typeIn(dir, initPass, initPass+"!")
	if code == 0 || !strings.Contains(out, "the two passphrases differ") {
		t.Errorf("different passphrases: exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "keystore.json")); err == nil {
		t.Error("a refused init wrote a keystore")
	}
}

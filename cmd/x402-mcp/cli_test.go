package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestHelpEverywhere: help for every command, asked for every way, is the
// command's usage on stdout with exit status 0 and nothing on stderr.
func TestHelpEverywhere(t *testing.T) {
	t.Parallel()
	for name := range commandHelp {
		words := strings.Fields(name)
		for _, args := range [][]string{
			append([]string{"help"}, words...),
			append(append([]string{}, words...), "--help"),
			append(append([]string{}, words...), "-h"),
		} {
			r := runBin(t, nil, args...)
			if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: x402-mcp "+name) {
				t.Errorf("%v: exit %d, stdout %.120q, stderr %.200q", args, r.code, r.stdout, r.stderr)
			}
		}
	}
	for group, subs := range commandGroups {
		for _, args := range [][]string{{"help", group}, {group, "--help"}, {group, "-h"}} {
			r := runBin(t, nil, args...)
			if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: x402-mcp "+group) {
				t.Errorf("%v: %+v", args, r)
			}
			for _, sub := range subs {
				if !strings.Contains(r.stdout, "x402-mcp "+group+" "+sub) {
					t.Errorf("%v does not show %s %s", args, group, sub)
				}
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "help"}} {
		if r := runBin(t, nil, args...); r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "usage") && !strings.Contains(r.stdout, "Usage") {
			t.Errorf("%v: %+v", args, r)
		}
	}
}

// TestMisuse: a mistake is a short message with the usage on stderr, exit
// status 2, nothing on stdout; a likely slip gets a "did you mean".
func TestMisuse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "config.toml"}, []string{"did you mean x402-mcp serve --config config.toml?", "usage: x402-mcp serve"}},
		{[]string{"history", "my config.toml"}, []string{"did you mean x402-mcp history --config 'my config.toml'?"}},
		{[]string{"sreve"}, []string{`unknown command "sreve"`, "did you mean x402-mcp serve?"}},
		{[]string{"aprove", "ap-1"}, []string{"did you mean x402-mcp approve?"}},
		{[]string{"help", "sreve"}, []string{"did you mean x402-mcp serve?"}},
		{[]string{"wallet"}, []string{"wallet needs a subcommand", "usage: x402-mcp wallet"}},
		{[]string{"wallet", "balanse"}, []string{"did you mean x402-mcp wallet balance?"}},
		{[]string{"ledger", "verfy"}, []string{"did you mean x402-mcp ledger verify?"}},
		{[]string{"policy", "check"}, []string{"needs POLICY_FILE", "usage: x402-mcp policy check"}},
		{[]string{"history", "-n", "abc"}, []string{"invalid value for -n (value not shown): expected a whole number", "usage: x402-mcp history"}},
		{[]string{"history", "-n", "0"}, []string{"-n must be 1 to 1000", "usage: x402-mcp history"}},
		{[]string{"serve", "--no-such-flag"}, []string{"flag provided but not defined: -no-such-flag", "usage: x402-mcp serve"}},
		{[]string{"approve"}, []string{"needs the ID of an approval"}},
		{[]string{"demo", "extra"}, []string{"unexpected argument (not shown)", "x402-mcp demo takes [-v]"}},
	} {
		r := runBin(t, nil, tc.args...)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q", tc.args, r.code, r.stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, r.stderr)
			}
		}
	}
}

// TestFlagsAnywhere: flags may come before or after positional arguments.
func TestFlagsAnywhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writePrivate(t, filepath.Join(dir, "config.toml"), "", 0o600)
	pol := writePrivate(t, filepath.Join(dir, "policy.toml"), "max_per_payment = \"0.05\"\n", 0o600)
	for _, args := range [][]string{
		{"policy", "check", pol, "--config", cfg},
		{"policy", "check", "--config", cfg, pol},
		{"policy", "check", "--config=" + cfg, pol},
	} {
		if r := runBin(t, nil, args...); r.code != 0 || !strings.Contains(r.stdout, "is valid") || !strings.Contains(r.stdout, "0.05") {
			t.Errorf("%v: %+v", args, r)
		}
	}
}

// TestVersionFromBuild: the version comes from the build: the revision of
// the checkout it was built from, the Go version, and a stamped release
// version where there is one; the MCP serverInfo says the same.
func TestVersionFromBuild(t *testing.T) {
	r := runBin(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "x402-mcp ") || !strings.Contains(r.stdout, "built with go1.") {
		t.Fatalf("version: %+v", r)
	}
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if rev := strings.TrimSpace(string(head))[:12]; !strings.Contains(r.stdout, "revision "+rev) {
			t.Errorf("version %q does not name the checkout's revision %s", r.stdout, rev)
		}
	} else {
		t.Logf("not a git checkout (%v): the revision is not checked", err)
	}
	stamped := filepath.Join(t.TempDir(), "x402-mcp")
	build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", "-X main.version=v1.2.3", "-o", stamped, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("stamped build: %v\n%s", err, out)
	}
	out, err := exec.Command(stamped, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "x402-mcp v1.2.3, built with go1.") {
		t.Errorf("stamped version: %q, %v", out, err)
	}
	tsClientDir(t)
	run := tsClient(t, tsPlan{Command: stamped, Args: []string{"serve"}, Steps: []tsStep{{Op: "listTools"}}})
	if v := gjson.Get(run.Stdout, "server.version").String(); v != "v1.2.3" {
		t.Errorf("serverInfo.version = %q, want v1.2.3 (%s)", v, gjson.Get(run.Stdout, "server").Raw)
	}
}

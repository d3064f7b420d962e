package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/x402-mcp/x402-mcp/policy"
)

// policyCommand handles `x402-mcp policy check FILE [--config FILE]`.
func policyCommand(args []string, stdout, stderr io.Writer) error {
	if _, err := groupCommand("policy", args, stdout, stderr); err != nil {
		return err
	}
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	configPathFlag := fs.String("config", "", "configuration file (TOML), for the tokens it adds")
	pos, err := parseFlags(fs, args[1:], stdout, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, 1, 1, stderr); err != nil {
		return err
	}
	file, configPath := pos[0], *configPathFlag
	// The token registry (built-in plus the config's tokens) gives the
	// decimals of per-token rules.
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	p, err := policy.Load(file, cfg.Registry)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is valid. It allows:\n%s\n%s", file, p.Describe(), policyLegend)
	return nil
}

// policyLegend explains the marks at the end of Describe's lines.
const policyLegend = `(default): the file does not set this rule, so the default holds; write the key to change it.
(policy file): the file sets this rule.
(turned off in the policy file): the file wrote "none" for this limit.
`

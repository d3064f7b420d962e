package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/x402-mcp/x402-mcp/policy"
)

// policyCommand handles `x402-mcp policy check FILE [--config FILE]`.
func policyCommand(args []string, stdout, stderr io.Writer) error {
	usageErr := &exitError{code: 2, err: errors.New("usage: x402-mcp policy check POLICY_FILE [--config CONFIG_FILE]")}
	if len(args) < 2 || args[0] != "check" {
		return usageErr
	}
	file, rest := args[1], args[2:]
	configPath := ""
	switch {
	case len(rest) == 2 && rest[0] == "--config":
		configPath = rest[1]
	case len(rest) != 0:
		return usageErr
	}
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

// Command x402-mcp is an MCP server that lets an AI agent find, price and
// pay for HTTP resources through the x402 protocol, within limits the
// operator sets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/x402-mcp/x402-mcp/internal/redact"
)

const usage = `x402-mcp: pay for HTTP APIs with x402, within the operator's limits

Usage:
  x402-mcp init [--dir DIR] [--passphrase-file FILE] [--force]
                                                        create a key, a config and a policy, and print
                                                        the snippets that register the server
  x402-mcp serve [--config FILE] [--log-level LEVEL]   run the MCP server on stdio
  x402-mcp serve --http ADDR --token-file FILE [--allow-remote] [--config FILE]
                                                        run it over streamable HTTP (bearer token)
  x402-mcp demo                                         run the whole flow on a local network
  x402-mcp policy check FILE [--config FILE]            validate a policy file and say what it allows
  x402-mcp history [--config FILE] [--json] [-n N]      list recorded payments, newest first
  x402-mcp ledger verify|repair [--config FILE]         check that the ledger's sums agree with its
                                                        records, or recompute them from the records
  x402-mcp approvals [--config FILE] [--json] [--all] [-n N]
                                                        list payments waiting for your approval
  x402-mcp approve ID [--config FILE]                   approve one: the agent's repeat of the call pays it once
  x402-mcp deny ID [--config FILE]                      refuse one
  x402-mcp console [--config FILE] [--listen ADDR] [--allow-remote] [--token-file FILE]
                                                        see and steer spending in a browser (prints the login link)
  x402-mcp wallet address|balance [--config FILE]       the payer's address, or its balances over RPC
  x402-mcp devnet [--dir DIR] [--fund USDC]             run a local x402 network with play money for an MCP host
  x402-mcp version                                      print the version

The wallet key is read from a file named in the config (an encrypted keystore
with a passphrase file, or a chmod-600 hex key file), or from the environment
variable X402_PRIVATE_KEY. It is never given on the command line.

The configuration file is --config FILE, else $X402_MCP_CONFIG; environment
variables X402_MCP_* override its values (see README.md).

See README.md for the configuration reference.
`

// exitError carries an exit status with a message for stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
			if ee.err == nil {
				os.Exit(code) // said all it had to say (help)
			}
		}
		// Scrub is the net under the messages, which do not quote a
		// rejected value: no private key reaches stderr.
		fmt.Fprintf(os.Stderr, "x402-mcp: %s\n", redact.Scrub(err.Error()))
		os.Exit(code)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("missing command\n\thint: run x402-mcp serve to start the MCP server, or x402-mcp demo to try it")}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdin, stdout, stderr)
	case "init":
		return initCommand(args[1:], stdin, stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "policy":
		return policyCommand(args[1:], stdout, stderr)
	case "history":
		return history(ctx, args[1:], stdout, stderr)
	case "ledger":
		return ledgerCommand(ctx, args[1:], stdout, stderr)
	case "approvals":
		return approvalsCommand(ctx, args[1:], stdout, stderr)
	case "approve", "deny":
		return decideCommand(ctx, args[0] == "approve", args[1:], stdout, stderr)
	case "console":
		return consoleCommand(ctx, args[1:], stdout, stderr)
	case "devnet":
		return devnetCommand(ctx, args[1:], stdout, stderr)
	case "wallet":
		return walletCommand(ctx, args[1:], stdout, stderr)
	case "localnet-mcp":
		// Hidden: the local network's paid MCP server on stdio.
		return localnetMCP(args[1:], stderr)
	case "version", "--version", "-version", "-v":
		if len(args) > 1 && isHelpFlag(args[1]) {
			printCommandUsage(stdout, flag.NewFlagSet("version", flag.ContinueOnError))
			return nil
		}
		fmt.Fprintf(stdout, "x402-mcp %s\n", versionLine())
		return nil
	case "help", "--help", "-help", "-h":
		return helpCommand(ctx, args[1:], stdin, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	msg := fmt.Sprintf("unknown command %s", redact.Quote(args[0]))
	if m := closest(args[0], commandNames()); m != "" {
		msg += fmt.Sprintf("\n\thint: did you mean x402-mcp %s?", m)
	} else {
		msg += "\n\thint: the commands are init, serve, demo, devnet, wallet, policy check, history, ledger verify, ledger repair, approvals, approve, deny, console, version and help"
	}
	return &exitError{code: 2, err: errors.New(msg)}
}

// helpCommand is `x402-mcp help [CMD [SUB]]`: the general usage, or one
// command's, on stdout.
func helpCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if args[0] == "help" {
		fmt.Fprint(stdout, "usage: x402-mcp help [COMMAND [SUBCOMMAND]]\n\nPrints the usage of x402-mcp, or of one command.\n")
		return nil
	}
	if !slices.Contains(commandNames(), args[0]) {
		return run(ctx, args[:1], stdin, stdout, stderr) // unknown: the same answer as running it
	}
	err := run(ctx, append(slices.Clone(args), "--help"), stdin, stdout, stderr)
	if err == errHelpShown {
		return nil
	}
	return err
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/internal/shellquote"
	"github.com/x402-mcp/x402-mcp/internal/suggest"
)

// commandHelp is what `x402-mcp help CMD` and `x402-mcp CMD --help` print
// above the flags: the arguments after the command's name, and what it
// does. Keys are FlagSet names.
var commandHelp = map[string]struct{ args, text string }{
	"init": {"[--dir DIR] [--passphrase-file FILE] [--force]",
		"Creates a wallet key in an encrypted keystore, its passphrase file, a starter config.toml and\n" +
			"policy.toml, and prints the snippets that register the server with MCP hosts. A keystore or a\n" +
			"passphrase file is never replaced; --force replaces only config.toml and policy.toml."},
	"serve": {"[--config FILE] [--log-level LEVEL] [--http ADDR --token-file FILE [--allow-remote]]",
		"Runs the MCP server: on stdio (what MCP hosts start), or over streamable HTTP with a bearer token."},
	"demo": {"[-v]",
		"Runs the whole flow on a self-contained local network with play money: discover, quote, pay,\n" +
			"refusals and spending, then checks the balances on the local chain. No internet, no real money."},
	"devnet": {"[--dir DIR] [--fund USDC] [--rpc ADDR] [--facilitator ADDR] [--api ADDR]",
		"Runs a local x402 network (chain, facilitator, paid API) with a funded payer and writes a config\n" +
			"for `x402-mcp serve`, so an MCP host can discover, quote and pay without real money. Stop it\n" +
			"with Ctrl-C."},
	"policy check": {"POLICY_FILE [--config FILE]",
		"Validates a spend policy file and says, in plain words, every limit it puts in force, the\n" +
			"defaults included."},
	"history": {"[--config FILE] [--json] [-n N]",
		"Lists the payments recorded in the ledger, newest first."},
	"ledger verify": {"[--config FILE]",
		"Checks that the ledger's running totals agree with its payment records; exits 1 if not."},
	"ledger repair": {"[--config FILE]",
		"Rebuilds the ledger's totals and their guards from the payment records."},
	"ledger migrate": {"--to postgres://USER@HOST:PORT/DATABASE [--config FILE]",
		"Copies every payment and approval of the configured SQLite ledger into a PostgreSQL ledger; safe to run again."},
	"approvals": {"[--config FILE] [--json] [--all] [-n N]",
		"Lists the payments waiting for your approval (with --all, decided and used ones too)."},
	"approve": {"ID [--config FILE]",
		"Approves one pending payment: the agent's repeat of the same call pays it, once."},
	"deny": {"ID [--config FILE]",
		"Refuses one pending payment: the agent's repeat of the call is refused until it expires."},
	"console": {"[--config FILE] [--listen 127.0.0.1:8405] [--allow-remote] [--token-file FILE]",
		"Runs the operator console, a web page on this machine that shows every budget, spending over\n" +
			"time, recent payments and the policy in force, and approves or denies pending payments. It\n" +
			"prints a one-time login link; the token file (created 0600 beside the ledger) is the other\n" +
			"way in. It never signs and never reads the wallet key. Stop it with Ctrl-C."},
	"wallet address": {"[--config FILE]", "Prints the payer's address."},
	"wallet balance": {"[--config FILE]",
		"Prints the payer's token balances on each network that has an RPC endpoint in the config."},
	"version": {"", "Prints the version, the source revision and the Go version of this build."},
}

// commandGroups are the commands that take a subcommand.
var commandGroups = map[string][]string{
	"policy": {"check"},
	"ledger": {"verify", "repair", "migrate"},
	"wallet": {"address", "balance"},
}

// commandNames lists every top-level command, for "did you mean".
func commandNames() []string {
	seen := map[string]bool{"help": true}
	for name := range commandHelp {
		first, _, _ := strings.Cut(name, " ")
		seen[first] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// errHelpShown ends a command whose help was asked for: exit status 0,
// nothing more printed.
var errHelpShown = &exitError{code: 0}

// printCommandUsage writes the usage of the command fs parses.
func printCommandUsage(w io.Writer, fs *flag.FlagSet) {
	h := commandHelp[fs.Name()]
	fmt.Fprintf(w, "usage: x402-mcp %s %s\n", fs.Name(), h.args)
	if h.text != "" {
		fmt.Fprintf(w, "\n%s\n", h.text)
	}
	any := false
	fs.VisitAll(func(*flag.Flag) { any = true })
	if any {
		fmt.Fprint(w, "\nflags:\n")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

// printGroupUsage writes the usage of a command that takes a subcommand.
func printGroupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: x402-mcp %s %s ...\n\n", group, strings.Join(commandGroups[group], "|"))
	for _, sub := range commandGroups[group] {
		h := commandHelp[group+" "+sub]
		fmt.Fprintf(w, "  x402-mcp %s %s %s\n      %s\n", group, sub, h.args, strings.ReplaceAll(h.text, "\n", "\n      "))
	}
	fmt.Fprintf(w, "\nRun x402-mcp help %s SUBCOMMAND for its flags.\n", group)
}

// groupCommand checks the subcommand of a group ("wallet balance") and
// answers help for the group itself.
func groupCommand(group string, args []string, stdout, stderr io.Writer) (string, error) {
	if len(args) > 0 && isHelpFlag(args[0]) {
		printGroupUsage(stdout, group)
		return "", errHelpShown
	}
	if len(args) == 0 {
		printGroupUsage(stderr, group)
		return "", &exitError{code: 2, err: fmt.Errorf("%s needs a subcommand: %s", group, strings.Join(commandGroups[group], " or "))}
	}
	for _, sub := range commandGroups[group] {
		if args[0] == sub {
			return sub, nil
		}
	}
	printGroupUsage(stderr, group)
	msg := fmt.Sprintf("unknown %s subcommand %s", group, redact.Quote(args[0]))
	if m := closest(args[0], commandGroups[group]); m != "" {
		msg += fmt.Sprintf("\n\thint: did you mean x402-mcp %s %s?", group, m)
	}
	return "", &exitError{code: 2, err: fmt.Errorf("%s", msg)}
}

func isHelpFlag(s string) bool {
	switch s {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// parseFlags parses args into fs, with flags before, between or after the
// positional arguments, and returns the positional ones. Help (-h,
// --help) prints the command's usage on stdout and ends the command with
// exit status 0 (errHelpShown). A mistake prints the usage on stderr and
// is an exit status 2 whose message does not repeat the value: package
// flag quotes a value it cannot read ("invalid value \"…\" for flag -n"),
// and what was typed there may be a key or a passphrase pasted into the
// wrong place.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(flagsFirst(fs, args))
	fs.SetOutput(stderr)
	switch {
	case err == flag.ErrHelp:
		printCommandUsage(stdout, fs)
		return nil, errHelpShown
	case err != nil:
		printCommandUsage(stderr, fs)
		return nil, &exitError{code: 2, err: fmt.Errorf("%s", flagMessage(fs, err))}
	}
	return fs.Args(), nil
}

// flagsFirst reorders args so that package flag, which stops at the first
// positional argument, sees every flag: flags (with their values) first,
// then "--", then the positional arguments in their order. A "--" in args
// ends the flags there.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(append(flags, "--"), pos...)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// wantArgs holds a command to its number of positional arguments. Too many
// is the common slip of a config file given without --config: that gets a
// "did you mean". A value that is not shown is one that may be a secret.
func wantArgs(fs *flag.FlagSet, pos []string, min, max int, stderr io.Writer) error {
	if len(pos) >= min && len(pos) <= max {
		return nil
	}
	printCommandUsage(stderr, fs)
	if len(pos) < min {
		return &exitError{code: 2, err: fmt.Errorf("x402-mcp %s needs %s", fs.Name(), commandHelp[fs.Name()].args)}
	}
	extra := pos[max]
	if fs.Lookup("config") != nil && strings.HasSuffix(strings.ToLower(extra), ".toml") && !redact.LooksSecret(extra) {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %s\n\thint: did you mean x402-mcp %s --config %s?", shellquote.Quote(extra), fs.Name(), shellquote.Quote(extra))}
	}
	return &exitError{code: 2, err: fmt.Errorf("unexpected argument (not shown)\n\thint: x402-mcp %s takes %s; a key or passphrase is never passed on the command line", fs.Name(), orNothing(commandHelp[fs.Name()].args))}
}

// misuse prints the command's usage on stderr and ends it with exit
// status 2 and msg.
func misuse(fs *flag.FlagSet, stderr io.Writer, msg string) error {
	printCommandUsage(stderr, fs)
	return &exitError{code: 2, err: errors.New(msg)}
}

func orNothing(s string) string {
	if s == "" {
		return "no arguments"
	}
	return s
}

// closest is the command within two edits of s, if one is nearest.
func closest(s string, candidates []string) string {
	if len(s) > 32 {
		return ""
	}
	return suggest.Closest(s, candidates)
}

// configOnly parses the arguments of a subcommand of group that takes
// only --config ("wallet balance", "ledger verify") and loads the config:
// the subcommand, and the config.
func configOnly(group string, args []string, stdout, stderr io.Writer) (string, *config.Config, error) {
	sub, err := groupCommand(group, args, stdout, stderr)
	if err != nil {
		return "", nil, err
	}
	fs := flag.NewFlagSet(group+" "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file (TOML)")
	pos, err := parseFlags(fs, args[1:], stdout, stderr)
	if err != nil {
		return "", nil, err
	}
	if err := wantArgs(fs, pos, 0, 0, stderr); err != nil {
		return "", nil, err
	}
	cfg, err := loadConfig(*configPath)
	return sub, cfg, err
}

// listFlags are the flags of a command that lists from the ledger
// (history, approvals): --config, --json and -n, plus what extra adds.
type listFlags struct {
	config string
	json   bool
	n      int
}

// parseList parses a listing command's arguments; what names the items
// ("records", "approvals").
func parseList(fs *flag.FlagSet, what string, args []string, stdout, stderr io.Writer) (listFlags, error) {
	var l listFlags
	fs.StringVar(&l.config, "config", "", "configuration file (TOML)")
	fs.BoolVar(&l.json, "json", false, "print JSON, one array of "+what)
	fs.IntVar(&l.n, "n", 50, "how many "+what+", newest first (at most 1000)")
	pos, err := parseFlags(fs, args, stdout, stderr)
	if err != nil {
		return l, err
	}
	if err := wantArgs(fs, pos, 0, 0, stderr); err != nil {
		return l, err
	}
	if l.n < 1 || l.n > 1000 {
		return l, misuse(fs, stderr, "-n must be 1 to 1000")
	}
	return l, nil
}

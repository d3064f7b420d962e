package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/internal/shellquote"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/localnet/token"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/signer"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// devnetDirName is the directory devnet writes into, inside the user's
// config directory, when --dir is not given.
const devnetDirName = "x402-mcp-devnet"

// devnetServerName is the name the printed commands register the MCP
// server under, so it cannot be mistaken for one paying real money.
const devnetServerName = "x402-devnet"

// devnetCommand is `x402-mcp devnet`: it runs the local x402 network on
// fixed loopback ports until ctx is cancelled, with a funded payer and a
// config for `x402-mcp serve`, so an MCP host can discover, quote and pay
// without real money. (The tests already have a helper named devnet.)
func devnetCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devnet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "`DIR` for config.toml, policy.toml and payer.key (default: "+devnetDirName+" in the user config directory)")
	rpcAddr := fs.String("rpc", "127.0.0.1:8545", "chain JSON-RPC listen `ADDR` (loopback only)")
	facAddr := fs.String("facilitator", "127.0.0.1:8403", "facilitator listen `ADDR` (loopback only)")
	apiAddr := fs.String("api", "127.0.0.1:8404", "paid API listen `ADDR` (loopback only)")
	fundText := fs.String("fund", "100", "USDC given to the payer")
	pos, err := parseFlags(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, 0, 0, stderr); err != nil {
		return err
	}
	for _, f := range []struct{ name, addr string }{{"rpc", *rpcAddr}, {"facilitator", *facAddr}, {"api", *apiAddr}} {
		if err := localnet.CheckLoopback(f.addr); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--%s: %s\n\thint: the devnet has no authentication and its facilitator pays gas for anyone; listen on 127.0.0.1:PORT", f.name, loopbackProblem(err, f.addr))}
		}
	}
	fund, err := tokens.ParseUnits(*fundText, 6)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("bad --fund: %v\n\thint: give whole USDC as a decimal, e.g. --fund 100 or --fund 2.5", err)}
	}
	if redact.LooksSecret(*dir) {
		return &exitError{code: 2, err: fmt.Errorf("--dir: %s\n\thint: a key is never given on the command line", redact.LooksLikeKey)}
	}
	if *dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("finding the user config directory: %w\n\thint: pass --dir DIR", err)
		}
		*dir = filepath.Join(base, devnetDirName)
	}
	// The printed commands start this very binary, so they need its
	// absolute path.
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.Abs(exe)
	}
	if err != nil {
		return fmt.Errorf("finding this program: %w", err)
	}

	d, err := localnet.StartDevnet(ctx, localnet.DevnetConfig{
		Dir:   *dir,
		Addrs: localnet.ListenAddrs{RPC: *rpcAddr, Facilitator: *facAddr, API: *apiAddr},
		Fund:  fund,
		WriteKey: func(path string, key *ecdsa.PrivateKey) error {
			return signer.NewKey(key).WriteHexFile(path)
		},
	})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil // interrupted while starting: stopping is what was asked
	case errors.Is(err, localnet.ErrNotDevnetDir):
		return fmt.Errorf("%w\n\thint: pass --dir with a new or empty directory (or remove those files if an old devnet left them)", err)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w\n\thint: is another devnet, or a node on the same port, running? stop it, or choose ports with --rpc, --facilitator and --api", err)
	default:
		return fmt.Errorf("starting the devnet: %w", err)
	}
	defer d.Close()
	// The earlier runs' ledgers are gone with their chains; so are the
	// identity records that would make a server refuse their absence.
	for _, old := range d.OldLedgers {
		if id, err := ledger.IDFilePath(old); err == nil {
			_ = os.Remove(id)
		}
	}

	// The balance is read the way the MCP server will read it, over
	// JSON-RPC with ethclient: if this works, so does the config.
	balance, err := rpcTokenBalance(ctx, d)
	if err != nil {
		return fmt.Errorf("reading the payer's balance over JSON-RPC: %w", err)
	}
	// The policy is read back with the policy package, so a devnet never
	// hands a host a policy the server would refuse, and the summary
	// printed is the one `policy check` gives.
	reg := tokens.Builtin()
	if err := reg.Add(d.Token); err != nil {
		return err
	}
	pol, err := policy.Load(d.PolicyPath, reg)
	if err != nil {
		return fmt.Errorf("the devnet's own policy: %w", err)
	}
	if err := printDevnet(stdout, d, balance, pol, exe); err != nil {
		return err
	}

	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping the devnet")
	return d.Close()
}

func rpcTokenBalance(ctx context.Context, d *localnet.Devnet) (*big.Int, error) {
	ec, err := ethclient.DialContext(ctx, d.Network.RPCURL)
	if err != nil {
		return nil, err
	}
	defer ec.Close()
	tok := token.NewToken()
	return bind.Call(tok.Instance(ec, d.Token.Address), &bind.CallOpts{Context: ctx}, tok.PackBalanceOf(d.Payer), tok.UnpackBalanceOf)
}

// desktopConfig is the Claude Desktop claude_desktop_config.json entry;
// a struct keeps command before args, as people write it.
type desktopConfig struct {
	MCPServers map[string]desktopServer `json:"mcpServers"`
}

type desktopServer struct {
	Command string   `json:"command"`
	Args    []string `json:"args"`
}

func printDevnet(w io.Writer, d *localnet.Devnet, balance *big.Int, pol policy.Policy, exe string) error {
	n, t := d.Network, d.Token
	fmt.Fprintln(w, "x402-mcp devnet: a local x402 network with play money, for trying x402-mcp from an MCP host")

	fmt.Fprintln(w, "\nEndpoints (loopback only)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  chain JSON-RPC\t%s\t%s, in memory: new chain on every start\n", n.RPCURL, t.Network)
	fmt.Fprintf(tw, "  facilitator\t%s\tverify, settle, discovery at /discovery/resources and /discovery/search\n", n.FacilitatorURL)
	fmt.Fprintf(tw, "  paid API\t%s\tx402 v1 and v2, paying to %s\n", n.APIURL, n.PayTo.Hex())
	// The last cell of a line does not widen its column, so the long
	// token line keeps the table above it narrow.
	fmt.Fprintf(tw, "  token\t%s %s (EIP-712 name %q, version %q; %d decimals)\n", t.Symbol, t.Address.Hex(), t.Name, t.Version, t.Decimals)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nPayer")
	fmt.Fprintf(w, "  %s holds %s USDC (read over JSON-RPC) and no ETH: the facilitator pays the gas\n", d.Payer.Hex(), tokens.FormatUnits(balance, t.Decimals))

	fmt.Fprintln(w, "\nPriced routes")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, rt := range d.Routes {
		if rt.Price == nil || rt.Price.Sign() <= 0 {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s USDC\tx402 v%d\t%s\n", rt.Method, n.APIURL+rt.Path, tokens.FormatUnits(rt.Price, t.Decimals), rt.Version, rt.Description)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nFiles in %s (rewritten on every start)\n", d.Dir)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s\tthe MCP server's config: key file, policy, RPC endpoint, facilitator, token\n", filepath.Base(d.ConfigPath))
	fmt.Fprintf(tw, "  %s\tthe spending policy, below\n", filepath.Base(d.PolicyPath))
	fmt.Fprintf(tw, "  %s\tthe payer's key (play money only)\n", filepath.Base(d.KeyPath))
	fmt.Fprintf(tw, "  %s\tthis chain's ledger, created by the MCP server on its first payment\n", filepath.Base(d.LedgerPath))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nPolicy")
	for _, line := range strings.Split(strings.TrimRight(pol.Describe(), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}

	fmt.Fprintln(w, "\nClaude Code:")
	fmt.Fprintf(w, "  claude mcp add %s -- %s serve --config %s\n", devnetServerName, shellquote.Quote(exe), shellquote.Quote(d.ConfigPath))
	snippet, err := json.MarshalIndent(desktopConfig{MCPServers: map[string]desktopServer{
		devnetServerName: {Command: exe, Args: []string{"serve", "--config", d.ConfigPath}},
	}}, "  ", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nClaude Desktop (claude_desktop_config.json):")
	fmt.Fprintf(w, "  %s\n", snippet)
	if strings.Contains(exe, "go-build") {
		// go run deletes its binary on exit, and the host would be left
		// with a command that no longer exists.
		fmt.Fprintln(w, "\nNote: this program is a temporary `go run` build; install it (go install ./cmd/x402-mcp) and use that path instead.")
	}
	if len(d.OldLedgers) > 0 {
		var names []string
		for _, o := range d.OldLedgers {
			names = append(names, filepath.Base(o))
		}
		fmt.Fprintf(w, "\nRemoved the earlier run's ledger (%s): its spending was on a chain that no longer exists.\n", strings.Join(names, ", "))
	}
	fmt.Fprintln(w, "\nRestart the MCP server in your host whenever you restart the devnet: the chain, payer and ledger are new each time,")
	fmt.Fprintln(w, "and a server still running from before refuses to pay (its ledger is gone) until it is restarted.")
	fmt.Fprintln(w, "Ctrl-C to stop.")
	return nil
}

// loopbackProblem words localnet.CheckLoopback's refusal. An address that
// parsed as ip:port is shown (it says which interface was meant); text
// that is not an address at all is not, as no rejected flag value is.
func loopbackProblem(err error, addr string) string {
	if _, port, perr := net.SplitHostPort(addr); perr == nil && errors.Is(err, localnet.ErrNotLoopback) && !redact.LooksSecret(addr) {
		if n, perr := strconv.ParseUint(port, 10, 16); perr == nil && n > 0 {
			return err.Error()
		}
	}
	return "expected an ip:port address such as 127.0.0.1:8545 " + redact.NotShown
}

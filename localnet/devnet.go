package localnet

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/x402-mcp/x402-mcp/tokens"
)

// Names of the files a devnet writes into its directory.
const (
	DevnetConfigFile = "config.toml"
	DevnetPolicyFile = "policy.toml"
	DevnetKeyFile    = "payer.key"
)

// DevnetLedgerGlob matches the ledgers devnet runs named in their configs:
// "ledger-RUN.db", one per run (the MCP server creates it), plus
// "ledger.db" from older versions. Each start removes those of earlier
// runs, with their -wal and -shm files: their chain is gone.
const DevnetLedgerGlob = "ledger*.db"

// DevnetMarker is the first line of every config.toml a devnet writes. A
// devnet rewrites its directory on every start, and this line is how it
// knows a directory is its own: it never replaces a config.toml without it,
// nor a key or policy that no devnet config.toml vouches for.
const DevnetMarker = "# written by x402-mcp devnet: rewritten on every start, edits are lost"

// DefaultDevnetFund is what the devnet payer gets when DevnetConfig.Fund is
// nil: 100 USDC (6 decimals).
var DefaultDevnetFund = big.NewInt(100_000_000)

// ErrNotDevnetDir is wrapped by StartDevnet's error when the directory
// holds a config, key or policy file that a devnet did not write.
var ErrNotDevnetDir = errors.New("holds files x402-mcp devnet did not write")

// devnetPolicy is a devnet's spending policy: the per-payment cap and
// approval threshold of a cautious operator, and a daily budget that a
// session of trying things out does not run into at once. Payments are
// restricted to the local chain, so the key can pay nothing else even if
// the config is edited to add tokens.
const devnetPolicy = `%s
# Play money on a local chain. What it allows:
#   x402-mcp policy check policy.toml --config config.toml
max_per_payment = "0.10"
approval_above = "0.025"
networks = [%q]

[budget]
day = "1.00"
`

// DevnetConfig configures StartDevnet.
type DevnetConfig struct {
	// Dir receives the files; it is created with mode 0700 if missing.
	Dir string
	// Addrs are the servers' listen addresses (loopback only); empty ones
	// get free ports, fixed ones keep a host's registration valid from one
	// run to the next.
	Addrs ListenAddrs
	// Fund is the payer's token balance in atomic units; nil means
	// DefaultDevnetFund.
	Fund *big.Int
	// WriteKey writes the payer's key to a new file (0600, never over an
	// existing one) in the format the server's key loader reads. It is
	// given by the caller so that this package shares no code with the
	// client it tests.
	WriteKey func(path string, key *ecdsa.PrivateKey) error
}

// Devnet is a local x402 network serving JSON-RPC, plus a funded payer and
// the files that let `x402-mcp serve --config` use both: config.toml naming
// the RPC endpoint, the facilitator for discovery and the local token;
// policy.toml; and payer.key. The chain lives in memory, so the chain, the
// payer and the ledger are new on every start, and so are the files; the
// token keeps its address (see devnetDeployer).
type Devnet struct {
	Network *Network
	// Dir is the absolute directory holding the files.
	Dir string
	// ConfigPath, PolicyPath and KeyPath are the files written in Dir.
	ConfigPath, PolicyPath, KeyPath string
	// Token is the chain's USDC as the config describes it.
	Token tokens.Token
	// Payer holds Funded atomic units of Token and no native coin: an x402
	// payer only signs, the facilitator pays the gas.
	Payer  common.Address
	Funded *big.Int
	// Routes are the paid API's routes (DefaultRoutes).
	Routes []Route
	// LedgerPath is this run's ledger, named in the config: a chain that
	// lives in memory gets a ledger of its own on every start.
	LedgerPath string
	// OldLedgers are the earlier runs' ledgers this start removed.
	OldLedgers []string
}

// StartDevnet checks that cfg.Dir is a devnet's (or new), starts the
// network with JSON-RPC on cfg.Addrs, funds a fresh payer and writes the
// files. ctx bounds startup only; the devnet runs until Close. Nothing is
// started when the directory or an address is refused.
func StartDevnet(ctx context.Context, cfg DevnetConfig) (_ *Devnet, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("localnet: devnet needs a directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("localnet: devnet directory: %w", err)
	}
	fund := cfg.Fund
	if fund == nil {
		fund = DefaultDevnetFund
	}
	if fund.Sign() < 0 {
		return nil, fmt.Errorf("localnet: devnet fund %s is negative", fund)
	}
	// Checked before the directory, so the answer to a bad command line
	// does not depend on what the directory holds; Start checks again.
	for _, a := range []string{cfg.Addrs.RPC, cfg.Addrs.Facilitator, cfg.Addrs.API} {
		if a != "" {
			if err := CheckLoopback(a); err != nil {
				return nil, fmt.Errorf("localnet: %w", err)
			}
		}
	}
	if err := checkDevnetDir(dir); err != nil {
		return nil, err
	}

	routes := DefaultRoutes()
	n, err := Start(ctx, NetworkConfig{Routes: routes, RPC: true, Addrs: cfg.Addrs, Deployer: devnetDeployer()})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	// Created only now, so a start that fails leaves no empty directory.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("localnet: devnet directory: %w", err)
	}
	key, payer, err := n.NewPayer(ctx, fund)
	if err != nil {
		return nil, fmt.Errorf("localnet: devnet payer: %w", err)
	}
	var run [6]byte
	if _, err := rand.Read(run[:]); err != nil {
		return nil, err
	}
	old, err := removeOldLedgers(dir)
	if err != nil {
		return nil, err
	}
	d := &Devnet{
		LedgerPath: filepath.Join(dir, "ledger-"+hex.EncodeToString(run[:])+".db"),
		OldLedgers: old,
		Network:    n,
		Dir:        dir,
		ConfigPath: filepath.Join(dir, DevnetConfigFile),
		PolicyPath: filepath.Join(dir, DevnetPolicyFile),
		KeyPath:    filepath.Join(dir, DevnetKeyFile),
		Token: tokens.Token{Network: n.Chain.Network(), ChainID: n.Chain.ChainID(), Address: n.Chain.TokenAddress(),
			Symbol: "USDC", Name: n.Chain.TokenName(), Version: n.Chain.TokenVersion(), Decimals: 6, Currency: "USD"},
		Payer:  payer,
		Funded: new(big.Int).Set(fund),
		Routes: routes,
	}
	// The config goes first: it is what claims the directory, so a run
	// interrupted before the key is written still leaves a directory the
	// next run recognises as its own.
	if err := writeFileAtomic(d.ConfigPath, []byte(d.configText())); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(d.PolicyPath, []byte(fmt.Sprintf(devnetPolicy, DevnetMarker, d.Token.Network))); err != nil {
		return nil, err
	}
	if err := replaceKeyFile(d.KeyPath, key, cfg.WriteKey); err != nil {
		return nil, err
	}
	return d, nil
}

// Close stops the network. The files stay: the ledger the MCP server wrote
// is worth reading after the run; the next start removes it and rewrites
// the rest.
func (d *Devnet) Close() error { return d.Network.Close() }

// configText is the MCP server's config for this run. Paths are relative,
// which the config package resolves from the file's directory, so the
// directory can be moved as a whole.
func (d *Devnet) configText() string {
	t := d.Token
	return fmt.Sprintf(`%s
# The local chain lives in memory: it, the payer and the ledger are new on
# every start, so restart the MCP server after restarting
# x402-mcp devnet (a server still running refuses to pay: its ledger is gone).
policy_file = %q
ledger = %q

[wallet]
key_file = %q

[[networks]]
id = %q
rpc_url = %q

[discovery]
facilitators = [%q]

# The paid API listens on loopback, which x402-mcp refuses to reach unless
# allowed here.
[http]
allow_private = [%q]

[[tokens]]
network = %q
address = %q
symbol = %q
name = %q
version = %q
decimals = %d
currency = %q
`, DevnetMarker, DevnetPolicyFile, filepath.Base(d.LedgerPath), DevnetKeyFile,
		t.Network, d.Network.RPCURL, d.Network.FacilitatorURL, d.apiHost(),
		t.Network, t.Address.Hex(), t.Symbol, t.Name, t.Version, t.Decimals, t.Currency)
}

// apiHost is the paid API's listen address (a loopback IP).
func (d *Devnet) apiHost() string {
	u, err := url.Parse(d.Network.APIURL)
	if err != nil {
		return "127.0.0.1"
	}
	return u.Hostname()
}

// checkDevnetDir checks that the files a devnet would replace in dir, if
// it exists, are a devnet's own: a config.toml starting with DevnetMarker,
// or no config.toml and neither a key nor a policy file. A key file with no
// devnet config beside it may well be someone's real wallet.
func checkDevnetDir(dir string) error {
	cfg := filepath.Join(dir, DevnetConfigFile)
	ours, err := hasDevnetMarker(cfg)
	switch {
	case err == nil && ours:
		return nil
	case err == nil:
		return fmt.Errorf("localnet: %s %w: its first line is not %q", cfg, ErrNotDevnetDir, DevnetMarker)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("localnet: devnet directory: %w", err)
	}
	for _, name := range []string{DevnetKeyFile, DevnetPolicyFile} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("localnet: %s %w: %s exists with no devnet %s beside it", dir, ErrNotDevnetDir, name, DevnetConfigFile)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("localnet: devnet directory: %w", err)
		}
	}
	return nil
}

// hasDevnetMarker reports whether the file's first line is DevnetMarker,
// reading no more than that line could take.
func hasDevnetMarker(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, len(DevnetMarker)+16).ReadSlice('\n')
	if err != nil && len(line) == 0 {
		return false, nil // empty, a directory, or unreadable: not ours
	}
	return strings.TrimRight(string(line), "\r\n") == DevnetMarker, nil
}

// writeFileAtomic replaces path with data through a temporary file (which
// CreateTemp makes with mode 0600) and a rename, so a reader sees the old
// file or the new one, never half of one, and a symlink at path is replaced
// rather than followed.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("localnet: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("localnet: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("localnet: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("localnet: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("localnet: write %s: %w", path, err)
	}
	return nil
}

// replaceKeyFile writes the key with the caller's writer, which refuses to
// overwrite anything, to a fresh name beside path and renames it over path:
// the key file is never missing or partial.
func replaceKeyFile(path string, key *ecdsa.PrivateKey, write func(string, *ecdsa.PrivateKey) error) error {
	if write == nil {
		return errors.New("localnet: DevnetConfig.WriteKey is not set")
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(suffix[:]))
	if err := write(tmp, key); err != nil {
		return fmt.Errorf("localnet: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("localnet: write %s: %w", path, err)
	}
	return nil
}

// removeOldLedgers removes the ledgers of earlier runs in dir (a devnet's
// own directory, checked by the caller) with their -wal and -shm files,
// and returns the ledgers removed.
func removeOldLedgers(dir string) ([]string, error) {
	old, err := filepath.Glob(filepath.Join(dir, DevnetLedgerGlob))
	if err != nil {
		return nil, err
	}
	for _, l := range old {
		for _, f := range []string{l, l + "-wal", l + "-shm"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("localnet: removing an earlier run's ledger: %w", err)
			}
		}
	}
	return old, nil
}

// devnetDeployer is the key that deploys every devnet's token, derived
// from a fixed phrase: the token has the same address on every start, so
// an MCP server still running from an earlier run reaches the point where
// it would pay (and refuses there, its ledger gone) rather than failing
// on an unknown token.
func devnetDeployer() *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("x402-mcp devnet token deployer (play money only)")))
	if err != nil {
		panic(err) // a fixed 32-byte value below the curve order
	}
	return k
}

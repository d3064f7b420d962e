package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/internal/shellquote"
	"github.com/x402-mcp/x402-mcp/signer"
)

// minPassphrase is the shortest passphrase init accepts. The keystore's
// scrypt slows guessing down, but a short passphrase next to a funded key
// is still the weakest link.
const minPassphrase = 12

// maxPassphraseFile matches the signer's bound on the file it reads later.
const maxPassphraseFile = 4 << 10

// The files init writes, inside --dir.
const (
	initKeystore   = "keystore.json"
	initPassphrase = "passphrase"
	initConfig     = "config.toml"
	initPolicy     = "policy.toml"
)

// initCommand sets up a first configuration: a fresh key in an encrypted
// keystore, its passphrase file, a starter config and policy, and the
// snippets that register the server with MCP hosts. The snippets name only
// the config file; the key never leaves the keystore.
func initCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("init", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dirFlag := flags.String("dir", "", "write the files to `DIR` (default: x402-mcp in the user config directory)")
	passFlag := flags.String("passphrase-file", "", "read the keystore passphrase from `FILE` (chmod 600) instead of the terminal")
	force := flags.Bool("force", false, "replace an existing config.toml and policy.toml (never a keystore or passphrase file)")
	pos, err := parseFlags(flags, args, stdout, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(flags, pos, 0, 0, stderr); err != nil {
		return err
	}

	for _, f := range []struct{ name, value string }{{"dir", *dirFlag}, {"passphrase-file", *passFlag}} {
		if redact.LooksSecret(f.value) {
			return &exitError{code: 2, err: fmt.Errorf("--%s: %s\n\thint: a key is never given on the command line", f.name, redact.LooksLikeKey)}
		}
	}
	dir, err := initDir(*dirFlag)
	if err != nil {
		return err
	}
	paths := initPaths{
		dir:        dir,
		keystore:   filepath.Join(dir, initKeystore),
		passphrase: filepath.Join(dir, initPassphrase),
		config:     filepath.Join(dir, initConfig),
		policy:     filepath.Join(dir, initPolicy),
	}
	if *passFlag != "" {
		if paths.passphrase, err = filepath.Abs(*passFlag); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		paths.passphraseGiven = true
	}
	// Every refusal comes before the passphrase is asked for, so nobody
	// types it twice for nothing.
	if err := paths.checkFree(*force); err != nil {
		return err
	}
	if *force && exists(paths.keystore) {
		// --force rewrites the config and the policy for the key that is
		// already there: no new key, no passphrase asked.
		addr, err := paths.rewrite()
		if err != nil {
			return err
		}
		paths.kept = true
		return printInit(stdout, paths, addr)
	}

	var pass []byte
	if paths.passphraseGiven {
		pass, err = readPassphraseFile(paths.passphrase)
	} else {
		pass, err = promptPassphrase(stdin, stderr)
	}
	if err != nil {
		return err
	}
	defer clear(pass)

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("init: cannot create %s: %w", dir, err)
	}
	addr, err := paths.write(pass, *force)
	if err != nil {
		return err
	}
	return printInit(stdout, paths, addr)
}

// initPaths are the files of one init run.
type initPaths struct {
	dir, keystore, passphrase, config, policy string
	// passphraseGiven is true when the passphrase file is the operator's
	// own (--passphrase-file): it is referenced, not written.
	passphraseGiven bool
	// kept is true when init --force kept an existing keystore and wrote
	// only the config and the policy.
	kept bool
}

// initDir is --dir, or the user config directory's x402-mcp, made absolute
// because the snippets are pasted into hosts that start in another
// directory.
func initDir(flagDir string) (string, error) {
	if flagDir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("init: cannot find the user config directory: %w\n\thint: pass --dir DIR", err)
		}
		flagDir = filepath.Join(base, "x402-mcp")
	}
	dir, err := filepath.Abs(flagDir)
	if err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	return dir, nil
}

// checkFree refuses to replace a keystore or a passphrase file ever (it may
// be the only copy of a funded key or of what unlocks it), and the config
// and policy unless --force. With --force and a keystore in place, init
// keeps it (and its passphrase file) and rewrites only the config and the
// policy (see rewrite).
func (p initPaths) checkFree(force bool) error {
	keystoreThere := exists(p.keystore)
	if keystoreThere && !force {
		return fmt.Errorf("init: %s already exists; init never replaces a keystore\n\thint: it may unlock a funded key: keep it. --force rewrites %s and %s for this keystore; --dir NEW_DIR makes a new key elsewhere", p.keystore, initConfig, initPolicy)
	}
	if !keystoreThere && !p.passphraseGiven && exists(p.passphrase) {
		return fmt.Errorf("init: %s already exists; refusing to replace it, even with --force\n\thint: it may unlock a funded key: keep it, and run init with --dir NEW_DIR, or move the old files away first", p.passphrase)
	}
	if force {
		return nil
	}
	var taken []string
	for _, f := range []string{p.config, p.policy} {
		if exists(f) {
			taken = append(taken, f)
		}
	}
	if len(taken) > 0 {
		return fmt.Errorf("init: %s already exists\n\thint: pass --force to replace %s (a keystore or passphrase file is never replaced), or use --dir NEW_DIR",
			strings.Join(taken, " and "), strings.Join([]string{initConfig, initPolicy}, " and "))
	}
	return nil
}

// rewrite is init --force over an existing keystore: it checks that the
// passphrase file (--passphrase-file, else init's own) unlocks it, then
// writes the config and the policy for that key. Nothing else changes.
func (p initPaths) rewrite() (addr string, err error) {
	if !p.passphraseGiven && !exists(p.passphrase) {
		return "", fmt.Errorf("init: %s has no passphrase file next to it (%s)\n\thint: pass --passphrase-file FILE naming the file that holds its passphrase", p.keystore, initPassphrase)
	}
	key, err := signer.LoadKeystore(p.keystore, p.passphrase)
	if err != nil {
		return "", fmt.Errorf("init: keeping the existing keystore: %w", err)
	}
	addr = key.Address().Hex()
	for _, f := range []struct{ path, text string }{{p.policy, starterPolicy}, {p.config, starterConfig(p, addr)}} {
		if err := writeFile(f.path, []byte(f.text), true); err != nil {
			return "", err
		}
	}
	return addr, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// readPassphraseFile reads --passphrase-file under the rules the server
// applies when it reads the same file later (owner-only, bounded, trailing
// CR/LF dropped), so that init fails now rather than the first serve.
func readPassphraseFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openSecretError("init: ", "passphrase file", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("init: cannot stat the passphrase file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("init: passphrase file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("init: passphrase file %s is accessible by group or others (mode %04o)\n\thint: run chmod 600 %s", path, perm, shellquote.Quote(path))
	}
	buf := make([]byte, maxPassphraseFile+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		clear(buf)
		return nil, fmt.Errorf("init: cannot read passphrase file %s: %w", path, err)
	}
	if n > maxPassphraseFile {
		clear(buf)
		return nil, fmt.Errorf("init: passphrase file %s is larger than %d bytes\n\thint: check that the path names the passphrase file", path, maxPassphraseFile)
	}
	for n > 0 && (buf[n-1] == '\n' || buf[n-1] == '\r') {
		n--
	}
	if err := checkPassphrase(buf[:n]); err != nil {
		clear(buf)
		return nil, fmt.Errorf("init: the passphrase in %s %w", path, err)
	}
	return buf[:n], nil
}

// checkPassphrase is completed by the caller's subject ("the passphrase
// … is too short").
func checkPassphrase(p []byte) error {
	if n := utf8.RuneCount(p); n < minPassphrase {
		return fmt.Errorf("is too short (%d characters; at least %d)\n\thint: use a few random words; the passphrase file will hold it, so it need not be memorable", n, minPassphrase)
	}
	return nil
}

// promptPassphrase asks twice on the terminal without echo. Prompts go to
// stderr: stdout carries the result, which may be piped.
func promptPassphrase(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, &exitError{code: 1, err: errors.New("init: no passphrase: stdin is not a terminal, so it cannot be typed\n\thint: write it to a file only you can read and pass it: (umask 077; cat > pass.txt), then x402-mcp init --passphrase-file pass.txt")}
	}
	fd := int(f.Fd())
	fmt.Fprintf(stderr, "Passphrase for the new keystore (at least %d characters): ", minPassphrase)
	p1, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("init: reading the passphrase: %w", err)
	}
	if err := checkPassphrase(p1); err != nil {
		clear(p1)
		return nil, fmt.Errorf("init: the passphrase %w", err)
	}
	fmt.Fprint(stderr, "Same passphrase again: ")
	p2, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	defer clear(p2)
	if err != nil {
		clear(p1)
		return nil, fmt.Errorf("init: reading the passphrase: %w", err)
	}
	if string(p1) != string(p2) {
		clear(p1)
		return nil, errors.New("init: the two passphrases differ; nothing was written\n\thint: run init again")
	}
	return p1, nil
}

// write creates the files. If any step fails, the files this run created
// are removed: the address has not been shown yet, so nobody can have
// funded the new key.
func (p initPaths) write(pass []byte, force bool) (addr string, err error) {
	var created []string
	defer func() {
		if err != nil {
			for _, f := range created {
				os.Remove(f)
			}
		}
	}()

	ks, addr, err := newKeystore(pass)
	if err != nil {
		return "", err
	}
	if err := writeNew(p.keystore, ks); err != nil {
		return "", err
	}
	created = append(created, p.keystore)
	if !p.passphraseGiven {
		line := append(append([]byte{}, pass...), '\n')
		err := writeNew(p.passphrase, line)
		clear(line)
		if err != nil {
			return "", err
		}
		created = append(created, p.passphrase)
	}
	for _, f := range []struct {
		path, text string
	}{
		{p.policy, starterPolicy},
		{p.config, starterConfig(p, addr)},
	} {
		existed := exists(f.path)
		if err := writeFile(f.path, []byte(f.text), force); err != nil {
			return "", err
		}
		if !existed {
			created = append(created, f.path)
		}
	}
	return addr, nil
}

// newKeystore makes a fresh key and returns it encrypted with go-ethereum's
// standard scrypt parameters (the format of geth, clef and cast), with its
// address. The plaintext key is wiped as far as go-ethereum lets us reach it.
func newKeystore(pass []byte) ([]byte, string, error) {
	priv, err := crypto.GenerateKey()
	if err != nil {
		return nil, "", fmt.Errorf("init: generating a key: %w", err)
	}
	defer func() {
		clear(priv.D.Bits())
		priv.D.SetInt64(0)
	}()
	addr := crypto.PubkeyToAddress(priv.PublicKey)
	// EncryptKey takes the passphrase as a string, a copy that cannot be
	// wiped; the signer has the same limit when it decrypts.
	blob, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: addr, PrivateKey: priv}, string(pass), keystore.StandardScryptN, keystore.StandardScryptP)
	if err != nil {
		return nil, "", fmt.Errorf("init: encrypting the key: %w", err)
	}
	return blob, addr.Hex(), nil
}

// writeNew creates path with mode 0600; it never replaces a file.
func writeNew(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("init: %s appeared while init ran; refusing to replace it", path)
		}
		return fmt.Errorf("init: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("init: writing %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("init: writing %s: %w", path, err)
	}
	// A key written but lost to a crash after its address was funded
	// would be money lost: make it durable before going on.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("init: writing %s: %w", path, err)
	}
	return nil
}

// writeFile writes a new file, or with replace an existing one through a
// rename, so a reader never sees half a config and a symlink at path is
// replaced rather than followed.
func writeFile(path string, data []byte, replace bool) error {
	if !replace || !exists(path) {
		return writeNew(path, data)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("init: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("init: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("init: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("init: replacing %s: %w", path, err)
	}
	return nil
}

// printInit tells the operator what to fund, what was written and how to
// register the server. Nothing here is secret: the address and paths only.
func printInit(w io.Writer, p initPaths, addr string) error {
	exe, err := os.Executable()
	if err != nil {
		exe = "x402-mcp"
	} else if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	var b strings.Builder
	fmt.Fprintf(&b, "x402-mcp is set up in %s\n\n", p.dir)
	fmt.Fprintf(&b, "Wallet address (send it USDC on the network you will pay on, e.g. Base; start small):\n  %s\n\n", addr)
	b.WriteString("Files:\n")
	if p.kept {
		fmt.Fprintf(&b, "  %s  encrypted key, kept as it was (only the config and the policy were rewritten)\n", p.keystore)
	} else {
		fmt.Fprintf(&b, "  %s  encrypted key (go-ethereum keystore, chmod 600): back it up with its passphrase\n", p.keystore)
	}
	if p.passphraseGiven {
		fmt.Fprintf(&b, "  %s  the passphrase (your file, referenced by the config)\n", p.passphrase)
	} else {
		fmt.Fprintf(&b, "  %s  the passphrase (chmod 600)\n", p.passphrase)
	}
	fmt.Fprintf(&b, "  %s  the configuration\n", p.config)
	fmt.Fprintf(&b, "  %s  the spending policy: read it before funding; check it with x402-mcp policy check %s\n\n", p.policy, shellquote.Quote(p.policy))

	b.WriteString("Register the server with your MCP host (the snippets name only the config file):\n\n")
	b.WriteString("Claude Code:\n")
	fmt.Fprintf(&b, "  claude mcp add x402 -- %s serve --config %s\n\n", shellquote.Quote(exe), shellquote.Quote(p.config))
	hostJSON, err := mcpServersJSON(exe, p.config)
	if err != nil {
		return err
	}
	b.WriteString("Claude Desktop (claude_desktop_config.json):\n")
	b.WriteString(hostJSON)
	b.WriteString("\nCursor (~/.cursor/mcp.json, or .cursor/mcp.json in a project):\n")
	b.WriteString(hostJSON)
	if strings.Contains(exe, "go-build") {
		// go run builds into a temporary directory that is deleted on exit.
		b.WriteString("\nNote: this binary was started by go run and will be deleted; build it (go build -o /usr/local/bin/x402-mcp ./cmd/x402-mcp) and use that path in the snippets.\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// mcpServersJSON is the "mcpServers" block Claude Desktop and Cursor share,
// built by encoding/json so any path is quoted correctly.
func mcpServersJSON(exe, config string) (string, error) {
	type server struct {
		Command string   `json:"command"`
		Args    []string `json:"args"`
	}
	doc := map[string]map[string]server{"mcpServers": {"x402": {Command: exe, Args: []string{"serve", "--config", config}}}}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", err
	}
	return string(out) + "\n", nil
}

// starterConfig names the files init wrote. Paths init created are
// relative, so the directory can be moved as a whole.
func starterConfig(p initPaths, addr string) string {
	pass := initPassphrase
	if p.passphraseGiven {
		pass = p.passphrase
	}
	return fmt.Sprintf(`# x402-mcp configuration, written by x402-mcp init on %s.
# Start the server with: x402-mcp serve --config %s
# Relative paths are resolved from this file's directory; "~/" is your home.
# Every key is explained in the configuration reference in README.md.

# The spending policy: caps, budgets, approval threshold, networks.
# Check it with: x402-mcp policy check %s
policy_file = %q

# The payment ledger (SQLite): every payment is recorded here before it is
# signed, and budgets are counted from it.
ledger = "ledger.db"

[wallet]
# The encrypted key of %s and the file holding its passphrase.
# Keep both readable only by you (chmod 600), and back up the pair.
keystore = %q
passphrase_file = %q

# How to read balances (x402-mcp wallet balance, the x402_wallet tool) and
# check payments whose outcome is unknown, per network. These are the
# networks' free public endpoints: rate-limited, fine for a wallet that
# pays now and then. Replace rpc_url with your provider's endpoint (https or
# wss) for more; an endpoint with an API key can instead come from the
# environment variable X402_MCP_RPC_<CHAIN_ID> (e.g. X402_MCP_RPC_8453).
# Delete a block to stop x402-mcp from contacting that endpoint.
[[networks]]
id = "eip155:8453"                       # Base (CAIP-2 id)
rpc_url = "https://mainnet.base.org"

[[networks]]
id = "eip155:84532"                      # Base Sepolia, the test network
rpc_url = "https://sepolia.base.org"

[discovery]
# Facilitators whose /discovery/search and /discovery/resources are searched for paid APIs.
facilitators = ["https://x402.org/facilitator"]
# Your own catalog files of APIs (relative to this file).
# catalogs = ["catalog.toml"]
# How long discovery results are reused, in seconds.
cache_seconds = 300

# [approvals]
# A payment above the policy's approval_above waits for you when the MCP host cannot ask you
# (Claude Desktop, claude.ai): x402-mcp approvals lists it, x402-mcp approve ID pays it once.
# out_of_band = true      # false: refuse such payments in those hosts instead
# valid_seconds = 600     # how long an approval stays valid
`, time.Now().UTC().Format("2006-01-02"), p.config, initPolicy, initPolicy, addr, initKeystore, pass)
}

// starterPolicy is examples/policy.toml with small limits and no host allow
// list, so a new wallet can pay any host but little. (go:embed cannot
// reach examples/ from this package's directory.)
const starterPolicy = `# x402-mcp spending policy, written by x402-mcp init: what the agent may
# pay for, decided before anything is signed. Check it with:
#   x402-mcp policy check policy.toml
#
# The limits are deliberately small; raise them when you trust the setup.
# Every rule is optional, and all of them apply together: the strictest
# wins. Amounts are quoted decimal strings ("0.10"), never floats.
#
# A key you leave out keeps its default, the same as with no policy file
# at all: max_per_payment 0.10 USD, [budget] day 1.00 USD (any 24 hours),
# max_payments_per_minute 30, max_authorization_seconds 300, https except
# to this machine, only the standard payment flow. Rules without a default
# (approval threshold, other budget periods, per-host budgets, networks,
# tokens, hosts, payees, token limits) are off until you write them.
# To loosen a default, write the key: a larger value, or "none" to turn the
# limit off (day = "none", max_payments_per_minute = "none").
# "x402-mcp policy check" marks each rule (default) or (policy file).

# The most one payment may cost, in USD. An agent can lower it for one call
# (max_price), never raise it.
max_per_payment = "0.05"

# A payment above this (USD) is made only after the human confirms it (the
# host must support MCP elicitation; without it such payments are refused).
approval_above = "0.02"

# Loop breaker: at most this many payments in any 60 seconds, all hosts
# together (1 to 1000, or "none" for no limit; default 30).
max_payments_per_minute = 10

# How long a signed authorization stays valid (10 to 86400 seconds). Until
# then anyone holding it can submit it, so keep it short; a server asking
# for longer gets this.
max_authorization_seconds = 300

# Plain http:// is refused, except to this machine (127.0.0.0/8, ::1,
# localhost) while allow_http_loopback is true. Set allow_http_loopback =
# false to refuse http everywhere.
require_https = true
allow_http_loopback = true

# Networks payments may use (CAIP-2): Base and Base Sepolia (testnet).
# Absent or empty: every network with a token in the registry.
networks = ["eip155:8453", "eip155:84532"]

# Tokens payments may use (CAIP-19). Absent or empty: every registry token.
# tokens = ["eip155:8453/erc20:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"]

# Payment flows allowed besides the standard one, in which the server
# settles only after it has done the work, so a request that fails costs
# nothing. In "upfront" and "escrow" the server takes the money before it
# does the work: a request that fails is paid all the same. A flow x402
# does not define is never paid. Absent or empty: only the standard flow.
# payment_flows = ["upfront"]

# Spending limits in USD over rolling windows that end at the moment of
# each payment: "day" is any 24 hours, not a calendar day, so there is no
# time zone and no reset at midnight that would allow twice the limit
# around it. month is any 30 days; total is for ever. A period left out has
# no limit, except day, which defaults to 1.00; "none" turns one off.
[budget]
hour = "0.25"
day = "1.00"
week = "3.00"
month = "10.00"
total = "20.00"

[hosts]
# Where payments may go. Without an allow list, any host not denied. A host
# matches its exact name (case, a trailing dot and the port do not matter;
# IDNs match their xn-- form). "*.example.org" matches every subdomain of
# example.org at any depth, but not example.org itself.
# allow = ["api.example.com", "*.example.org"]
# Deny wins over allow.
deny = []

# Budgets for one host, same periods as [budget], applied on top of them.
# The key is an exact host name, no "*".
# [hosts.budget."api.example.com"]
# day = "0.50"

# Who may be paid (the payTo address). Deny wins over allow; absent or
# empty allow: anyone not denied.
[payees]
# allow = ["0x209693Bc6afc0C5328bA36FaF03C514EF312287C"]
deny = []

# A cap on one payment in units of the token itself (here USDC on Base),
# for tokens named by their CAIP-19 id. It may not have more decimals than
# the token.
[token_limits."eip155:8453/erc20:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"]
max_per_payment = "0.05"
`

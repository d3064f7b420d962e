package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// Environment variables that override the file. Containers and service
// managers configure programs through the environment; these let them do
// so without templating a TOML file. Each names a file or a URL, never a
// secret itself: the key stays in a file.
const (
	// EnvConfig is the configuration file, used when no --config is given.
	EnvConfig = "X402_MCP_CONFIG"
	// EnvPolicyFile replaces policy_file.
	EnvPolicyFile = "X402_MCP_POLICY_FILE"
	// EnvLedger replaces ledger.
	EnvLedger = "X402_MCP_LEDGER"
	// EnvKeyFile replaces the wallet with a hex key file.
	EnvKeyFile = "X402_MCP_KEY_FILE"
	// EnvKeystore replaces the wallet's keystore (and drops a key_file).
	EnvKeystore = "X402_MCP_KEYSTORE"
	// EnvPassphraseFile replaces the keystore's passphrase_file.
	EnvPassphraseFile = "X402_MCP_PASSPHRASE_FILE"
	// EnvFacilitators replaces discovery.facilitators (comma-separated).
	EnvFacilitators = "X402_MCP_FACILITATORS"
	// EnvRPCPrefix followed by a decimal chain id (X402_MCP_RPC_8453) sets
	// that network's rpc_url.
	EnvRPCPrefix = "X402_MCP_RPC_"
)

// envPrefix is shared by every variable above; UnknownEnv uses it to catch
// misspellings.
const envPrefix = "X402_MCP_"

var knownEnv = []string{EnvConfig, EnvPolicyFile, EnvLedger, EnvKeyFile, EnvKeystore, EnvPassphraseFile, EnvFacilitators}

// LoadWithEnv reads the configuration file at path (or, when path is
// empty, the one named by X402_MCP_CONFIG; with neither, the defaults) and
// then applies the environment overrides read through getenv (os.Getenv
// when nil). An error in an override names the variable.
//
// Paths from the environment must be absolute (or start with "~/"): an MCP
// host starts the server in a working directory the operator does not
// choose, so a relative path would name a different file from one host to
// the next.
//
// X402_MCP_RPC_<CHAIN_ID> is looked up for every network in [[networks]]
// and every network that has a token in the registry; for one of the
// latter it adds the network. (Only those chains can be paid on, and
// getenv cannot list the variables that exist.)
func LoadWithEnv(path string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var c *Config
	switch {
	case path != "":
		var err error
		if c, err = read(path); err != nil {
			return nil, err
		}
	case getenv(EnvConfig) != "":
		p, err := envPath(EnvConfig, getenv(EnvConfig))
		if err != nil {
			return nil, err
		}
		if c, err = read(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil, &Error{Var: EnvConfig, Msg: fmt.Sprintf("cannot read %s: %v", redact.Path(p), unwrapPath(err)), Err: err,
					Hint: "point " + EnvConfig + " at the configuration file, or unset it to run with the defaults"}
			}
			return nil, err
		}
	default:
		c = Default()
	}
	if err := c.applyEnv(getenv); err != nil {
		return nil, err
	}
	return c, c.finish()
}

// applyEnv overrides the file's values with the environment's.
func (c *Config) applyEnv(getenv func(string) string) error {
	if v := getenv(EnvPolicyFile); v != "" {
		p, err := envPath(EnvPolicyFile, v)
		if err != nil {
			return err
		}
		c.PolicyPath, c.policyVar = p, EnvPolicyFile
	}
	if v := getenv(EnvLedger); v != "" {
		p, err := envLedger(v)
		if err != nil {
			return err
		}
		c.LedgerPath = p
	}
	if err := c.applyWalletEnv(getenv); err != nil {
		return err
	}
	if v := getenv(EnvFacilitators); v != "" {
		list, err := checkFacilitators(strings.Split(v, ","), func(i int) *Error {
			return &Error{Var: EnvFacilitators, Key: fmt.Sprintf("element %d", i+1)}
		})
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return &Error{Var: EnvFacilitators, Msg: "no facilitator URL given"}
		}
		c.Facilitators = list
	}
	return c.applyRPCEnv(getenv)
}

// applyWalletEnv replaces the key source. A variable naming a key source
// replaces the file's source as a whole, so the file's keystore and an
// environment key file never meet in one configuration.
func (c *Config) applyWalletEnv(getenv func(string) string) error {
	keyFile, keystore, pass := getenv(EnvKeyFile), getenv(EnvKeystore), getenv(EnvPassphraseFile)
	if keyFile != "" && keystore != "" {
		return &Error{Var: EnvKeyFile, Msg: "both " + EnvKeyFile + " and " + EnvKeystore + " are set", Hint: "set one key source"}
	}
	if keyFile != "" && pass != "" {
		return &Error{Var: EnvPassphraseFile, Msg: "a passphrase file is set with " + EnvKeyFile + ", which is not encrypted",
			Hint: "unset " + EnvPassphraseFile + ", or use " + EnvKeystore + " for an encrypted keystore"}
	}
	var err error
	switch {
	case keyFile != "":
		c.Wallet = Wallet{}
		if c.Wallet.KeyFile, err = envPath(EnvKeyFile, keyFile); err != nil {
			return err
		}
	case keystore != "":
		c.Wallet.KeyFile = ""
		if c.Wallet.Keystore, err = envPath(EnvKeystore, keystore); err != nil {
			return err
		}
	}
	if pass != "" {
		if c.Wallet.PassphraseFile, err = envPath(EnvPassphraseFile, pass); err != nil {
			return err
		}
	}
	switch {
	case c.Wallet.Keystore != "" && c.Wallet.PassphraseFile == "":
		return &Error{Var: EnvKeystore, Msg: "a keystore needs a passphrase file",
			Hint: "set " + EnvPassphraseFile + " to the file holding its passphrase (chmod 600)"}
	case c.Wallet.Keystore == "" && c.Wallet.PassphraseFile != "":
		return &Error{Var: EnvPassphraseFile, Msg: "a passphrase file is set but no keystore is configured",
			Hint: "set " + EnvKeystore + " too, or unset " + EnvPassphraseFile}
	}
	return nil
}

// applyRPCEnv sets rpc_url from X402_MCP_RPC_<CHAIN_ID>.
func (c *Config) applyRPCEnv(getenv func(string) string) error {
	type chain struct {
		id string
		n  *big.Int
	}
	var chains []chain
	seen := map[string]bool{}
	for _, n := range c.Networks {
		chains = append(chains, chain{n.ID, n.ChainID})
		seen[n.ID] = true
	}
	var extra []chain
	for _, id := range c.Registry.Networks() {
		if seen[id] {
			continue
		}
		if n, err := tokens.ParseNetwork(id); err == nil {
			extra = append(extra, chain{id, n})
			seen[id] = true
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].n.Cmp(extra[j].n) < 0 })
	for _, ch := range append(chains, extra...) {
		name := EnvRPCPrefix + ch.n.String()
		v := getenv(name)
		if v == "" {
			continue
		}
		u, p := checkURL(strings.TrimSpace(v), rpcURL)
		if p != nil {
			return &Error{Var: name, Msg: p.msg, Hint: p.hint}
		}
		i := slices.IndexFunc(c.Networks, func(n Network) bool { return n.ID == ch.id })
		if i < 0 {
			c.Networks = append(c.Networks, Network{ID: ch.id, ChainID: ch.n})
			i = len(c.Networks) - 1
		}
		c.Networks[i].RPCURL = u
	}
	return nil
}

// envPath checks a path from the environment and expands "~/".
func envPath(name, v string) (string, error) {
	v = strings.TrimSpace(v)
	if rest, ok := strings.CutPrefix(v, "~/"); ok {
		if redact.LooksSecret(rest) {
			return "", &Error{Var: name, Msg: redact.LooksLikeKey,
				Hint: "put the secret in a file only you can read (chmod 600) and give that file's absolute path"}
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", &Error{Var: name, Msg: fmt.Sprintf("cannot expand ~/: %v", err), Hint: "write an absolute path"}
		}
		return filepath.Join(home, rest), nil
	}
	if redact.LooksSecret(v) {
		return "", &Error{Var: name, Msg: redact.LooksLikeKey,
			Hint: "put the secret in a file only you can read (chmod 600) and give that file's absolute path"}
	}
	if !filepath.IsAbs(v) {
		// The value is not repeated: a variable meant to name a file may
		// hold the secret itself.
		return "", &Error{Var: name, Msg: "expected an absolute path, found a relative one (value not shown)",
			Hint: "write an absolute path (or one starting with ~/): the server's working directory is chosen by the MCP host"}
	}
	return filepath.Clean(v), nil
}

// CheckEnvNames looks at every X402_MCP_ variable of environ ("NAME=value"
// pairs, as from os.Environ) and reports the first one that c did not use:
// a misspelt name, or X402_MCP_RPC_<CHAIN_ID> for a chain that is neither
// in [[networks]] nor in the token registry. Such a variable would
// otherwise be ignored in silence, leaving the file's value (or the
// default) in force, which is the same mistake as an unknown key in the
// file.
func (c *Config) CheckEnvNames(environ []string) error {
	var names []string
	for _, kv := range environ {
		if name, v, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) && v != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if slices.Contains(knownEnv, name) {
			continue
		}
		id, ok := strings.CutPrefix(name, EnvRPCPrefix)
		if !ok {
			return &Error{Var: name, Msg: "unknown variable",
				Hint: "the variables are " + strings.Join(knownEnv, ", ") + " and " + EnvRPCPrefix + "<CHAIN_ID>; check the spelling"}
		}
		chain, err := tokens.ParseNetwork("eip155:" + id)
		if err != nil {
			return &Error{Var: name, Msg: fmt.Sprintf("%s is not a chain id", redact.Quote(id)),
				Hint: "name the chain by its decimal id, e.g. " + EnvRPCPrefix + "8453 for Base"}
		}
		if !slices.ContainsFunc(c.Networks, func(n Network) bool { return n.ChainID.Cmp(chain) == 0 }) {
			return &Error{Var: name, Msg: fmt.Sprintf("chain %s is neither in [[networks]] nor has a token in the registry", chain),
				Hint: fmt.Sprintf("add a [[networks]] table with id = \"eip155:%s\" (or a [[tokens]] entry) to the configuration, or unset %s", chain, name)}
		}
	}
	return nil
}

// unwrapPath drops the "open" of an *fs.PathError for a shorter message.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/pelletier/go-toml/v2"

	"github.com/x402-mcp/x402-mcp/internal/fileerr"
	"github.com/x402-mcp/x402-mcp/internal/netguard"
	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// maxFileSize bounds a configuration file.
const maxFileSize = 1 << 20

// File mirrors the TOML document.
type File struct {
	PolicyFile string  `toml:"policy_file"`
	Ledger     string  `toml:"ledger"`
	Wallet     Wallet  `toml:"wallet"`
	HTTP       HTTP    `toml:"http"`
	Tokens     []Token `toml:"tokens"`
	// Networks say how to read balances (and, later, authorization
	// state) on each chain.
	Networks  []NetworkEntry `toml:"networks"`
	Discovery Discovery      `toml:"discovery"`
	Approvals Approvals      `toml:"approvals"`
	// Upstreams are MCP servers whose tools are re-exported, paid for
	// through x402 when they ask (see upstreams.go).
	Upstreams []UpstreamEntry `toml:"upstreams"`

	// LedgerReconcileSeconds is how often a running server resolves the
	// ledger's pending payments; default 30. A top-level key: ledger
	// already names the file.
	LedgerReconcileSeconds *int64 `toml:"ledger_reconcile_seconds"`
}

// Approvals says how a payment above the policy's approval_above is
// approved when the MCP client cannot ask the human. Pointers tell a
// missing key (the default) from an explicit value.
type Approvals struct {
	// OutOfBand records such payments as pending approvals in the ledger
	// for `x402-mcp approve`/`deny`; default true.
	OutOfBand *bool `toml:"out_of_band"`
	// ValidSeconds is how long an approval stays valid; default 600.
	ValidSeconds *int64 `toml:"valid_seconds"`
}

// Wallet says where the key comes from: an encrypted keystore with a
// passphrase file, or a raw hex key file. The environment variable
// X402_PRIVATE_KEY is the fallback when neither is set.
type Wallet struct {
	Keystore       string `toml:"keystore"`
	PassphraseFile string `toml:"passphrase_file"`
	KeyFile        string `toml:"key_file"`
}

// HTTP tunes the outgoing requests.
type HTTP struct {
	TimeoutSeconds   int64 `toml:"timeout_seconds"`
	MaxResponseBytes int64 `toml:"max_response_bytes"`
	// AllowPrivate lists the private addresses (IPs or CIDR prefixes) that
	// agent-chosen requests may reach; all others are refused.
	AllowPrivate []string `toml:"allow_private"`
	// KnownTermsSeconds is how long the payment terms seen for a method
	// and URL let x402_fetch pay on the first request; 0 turns it off.
	KnownTermsSeconds *int64 `toml:"known_terms_seconds"`
}

// Token adds or overrides a registry token.
type Token struct {
	Network  string `toml:"network"`
	Address  string `toml:"address"`
	Symbol   string `toml:"symbol"`
	Name     string `toml:"name"`
	Version  string `toml:"version"`
	Decimals *int   `toml:"decimals"`
	Currency string `toml:"currency"`
}

// Config is the checked configuration.
type Config struct {
	// Path is the file it came from; empty for the defaults.
	Path string
	// PolicyPath is the policy file; empty means the default policy.
	PolicyPath string
	// LedgerPath is the ledger: a SQLite file, or a PostgreSQL URL (see
	// IsDatabaseURL) shared by a fleet; empty means the default file.
	LedgerPath string
	Wallet     Wallet
	Policy     policy.Policy
	Registry   *tokens.Registry
	Timeout    time.Duration
	MaxBody    int64
	// AllowPrivate are the private destinations (loopback, RFC 1918,
	// link-local, ...) the operator lets agent-chosen requests reach, from
	// http.allow_private; an IPv4 prefix also covers its IPv4-mapped form.
	AllowPrivate []netip.Prefix
	// KnownTerms is how long terms seen for a method and URL (a quote, a
	// 402) let a fetch pay on its first request; 0 means never.
	KnownTerms time.Duration
	// Networks are the chains with an RPC endpoint, in file order, then
	// those added by X402_MCP_RPC_<CHAIN_ID> in chain id order. Every
	// entry has an RPCURL.
	Networks []Network
	// Facilitators are base URLs (no trailing "/") whose
	// /discovery/search and /discovery/resources are searched.
	Facilitators []string
	// Catalogs are the operator's catalog files, as resolved paths.
	Catalogs []string
	// CacheTTL is how long discovery results are reused; never zero.
	CacheTTL time.Duration
	// OutOfBandApproval turns on approvals through the ledger and the CLI
	// for clients that cannot ask the human; ApprovalTTL is how long one
	// stays valid.
	OutOfBandApproval bool
	ApprovalTTL       time.Duration
	// ReconcileInterval is how often a running server reconciles the
	// ledger: pending payments whose outcome the chain now proves are
	// settled or released. Never zero.
	ReconcileInterval time.Duration
	// Upstreams are the MCP servers whose tools are re-exported.
	Upstreams []Upstream

	// Until finish: where keys are, for messages about them, and which
	// environment variable named the policy file, if one did.
	lines     map[string]int
	data      []byte
	policyVar string
}

// Error is a problem in a configuration file, with the line when known,
// or in an environment variable that overrides it (Var set, Path empty).
type Error struct {
	Path string
	Line int
	// Var is the environment variable the bad value came from.
	Var  string
	Key  string
	Msg  string
	Hint string
	// Err is the underlying error, when there is one (a policy file's
	// *policy.FileError, an os error), for errors.As and errors.Is.
	Err error
}

func (e *Error) Error() string {
	where := e.Path
	if e.Var != "" {
		where = "environment variable " + e.Var
	}
	return fileerr.Format(where, e.Line, e.Key, e.Msg, e.Hint)
}

func (e *Error) Unwrap() error { return e.Err }

// Default is the configuration used without a file: built-in tokens and
// the default policy, no wallet, no networks and no discovery sources.
func Default() *Config {
	return &Config{Policy: policy.Default(), Registry: tokens.Builtin(), CacheTTL: DefaultCacheTTL, OutOfBandApproval: true, ApprovalTTL: DefaultApprovalTTL,
		ReconcileInterval: DefaultReconcileInterval, KnownTerms: DefaultKnownTerms}
}

// Load reads and checks a configuration file. It does not look at the
// environment; see LoadWithEnv.
func Load(path string) (*Config, error) {
	c, err := read(path)
	if err != nil {
		return nil, err
	}
	return c, c.finish()
}

// Parse checks the TOML text of a configuration file; path is used in
// messages and to resolve relative paths.
func Parse(path string, data []byte) (*Config, error) {
	c, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	return c, c.finish()
}

// read loads a file into a Config that still needs finish.
func read(path string) (*Config, error) {
	if redact.LooksSecret(path) {
		return nil, fmt.Errorf("config: %s\n\thint: give the path of the configuration file", redact.LooksLikeKey)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileSize)}
	}
	return parse(path, data)
}

// parse checks everything in the file except what depends on the
// environment: the policy file is not read yet (X402_MCP_POLICY_FILE may
// replace it, and a replaced file need not exist) and a network may still
// lack its RPC URL (X402_MCP_RPC_<CHAIN_ID> may supply it). finish does
// both.
func parse(path string, data []byte) (*Config, error) {
	var doc File
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, tomlError(path, data, err)
	}
	lines := keyLines(data)
	fail := func(key, msg, hint string) error {
		return &Error{Path: path, Line: lines[key], Key: key, Msg: msg, Hint: hint}
	}
	dir := filepath.Dir(path)
	c := &Config{Path: path, Registry: tokens.Builtin(), Policy: policy.Default(), lines: lines, data: data}

	c.Wallet = Wallet{
		Keystore:       resolve(dir, doc.Wallet.Keystore),
		PassphraseFile: resolve(dir, doc.Wallet.PassphraseFile),
		KeyFile:        resolve(dir, doc.Wallet.KeyFile),
	}
	switch {
	case c.Wallet.Keystore != "" && c.Wallet.KeyFile != "":
		return nil, fail("wallet.key_file", "both keystore and key_file are set", "keep one key source")
	case c.Wallet.Keystore != "" && c.Wallet.PassphraseFile == "":
		return nil, fail("wallet.keystore", "a keystore needs passphrase_file", "add passphrase_file = \"path/to/passphrase\" (chmod 600)")
	case c.Wallet.Keystore == "" && c.Wallet.PassphraseFile != "":
		return nil, fail("wallet.passphrase_file", "passphrase_file is set without keystore", "add keystore = \"path/to/keystore.json\"")
	}

	c.Timeout = time.Duration(doc.HTTP.TimeoutSeconds) * time.Second
	if s := doc.HTTP.TimeoutSeconds; s < 0 || s > 600 {
		return nil, fail("http.timeout_seconds", outOfRange, "use 1 to 600 seconds")
	}
	c.MaxBody = doc.HTTP.MaxResponseBytes
	if b := doc.HTTP.MaxResponseBytes; b < 0 || b > 16<<20 {
		return nil, fail("http.max_response_bytes", outOfRange, "use at most 16777216 (16 MiB)")
	}
	c.KnownTerms = DefaultKnownTerms
	if s := doc.HTTP.KnownTermsSeconds; s != nil {
		if *s < 0 || *s > maxKnownTermsSeconds {
			return nil, fail("http.known_terms_seconds", outOfRange,
				fmt.Sprintf("use 0 (off) to %d seconds (the default is %d)", maxKnownTermsSeconds, int(DefaultKnownTerms.Seconds())))
		}
		c.KnownTerms = time.Duration(*s) * time.Second
	}
	if len(doc.HTTP.AllowPrivate) > maxAllowPrivate {
		return nil, fail("http.allow_private", fmt.Sprintf("more than %d entries", maxAllowPrivate), "list prefixes such as \"10.1.2.0/24\" rather than single addresses")
	}
	for i, raw := range doc.HTTP.AllowPrivate {
		key := fmt.Sprintf("http.allow_private[%d]", i)
		p, err := netguard.ParsePrefix(strings.TrimSpace(raw))
		if err != nil {
			return nil, &Error{Path: path, Line: lines["http.allow_private"], Key: key, Msg: err.Error(),
				Hint: `write an IP address ("127.0.0.1", "::1") or a CIDR prefix ("10.1.2.0/24")`}
		}
		if slices.Contains(c.AllowPrivate, p) {
			return nil, &Error{Path: path, Line: lines["http.allow_private"], Key: key, Msg: fmt.Sprintf("%s is listed twice", p), Hint: "list each address or prefix once"}
		}
		c.AllowPrivate = append(c.AllowPrivate, p)
	}

	for i, t := range doc.Tokens {
		key := fmt.Sprintf("tokens[%d]", i)
		tok, err := t.token()
		if err != nil {
			return nil, &Error{Path: path, Line: tableLine(data, "tokens", i), Key: key, Msg: err.Error(),
				Hint: "a token needs network, address, name, version and decimals; currency = \"USD\" for a USD stablecoin"}
		}
		if err := c.Registry.Add(tok); err != nil {
			return nil, &Error{Path: path, Line: tableLine(data, "tokens", i), Key: key, Msg: err.Error()}
		}
	}
	loc, msg, hint := ledgerLocation(dir, doc.Ledger)
	if msg != "" {
		return nil, fail("ledger", msg, hint)
	}
	c.LedgerPath = loc
	c.ReconcileInterval = DefaultReconcileInterval
	if s := doc.LedgerReconcileSeconds; s != nil {
		if *s < minReconcileSeconds || *s > maxReconcileSeconds {
			return nil, fail("ledger_reconcile_seconds", outOfRange,
				fmt.Sprintf("use %d to %d seconds (the default is %d)", minReconcileSeconds, maxReconcileSeconds, int(DefaultReconcileInterval.Seconds())))
		}
		c.ReconcileInterval = time.Duration(*s) * time.Second
	}
	c.PolicyPath = resolve(dir, doc.PolicyFile)

	nets, err := parseNetworks(path, doc.Networks, func(i int, key string) (int, string) {
		full := fmt.Sprintf("networks[%d].%s", i, key)
		if l := lines[full]; l > 0 {
			return l, full
		}
		return tableLine(data, "networks", i), full
	})
	if err != nil {
		return nil, err
	}
	c.Networks = nets

	c.Facilitators, err = checkFacilitators(doc.Discovery.Facilitators, func(i int) *Error {
		return &Error{Path: path, Line: lines["discovery.facilitators"], Key: fmt.Sprintf("discovery.facilitators[%d]", i)}
	})
	if err != nil {
		return nil, err
	}
	if len(doc.Discovery.Catalogs) > maxCatalogs {
		return nil, fail("discovery.catalogs", fmt.Sprintf("more than %d catalog files", maxCatalogs), "")
	}
	for i, p := range doc.Discovery.Catalogs {
		key := fmt.Sprintf("discovery.catalogs[%d]", i)
		line := lines["discovery.catalogs"]
		p = resolve(dir, strings.TrimSpace(p))
		if p == "" {
			return nil, &Error{Path: path, Line: line, Key: key, Msg: "the path is empty", Hint: `write a file name such as "catalog.toml"`}
		}
		if slices.Contains(c.Catalogs, p) {
			return nil, &Error{Path: path, Line: line, Key: key, Msg: fmt.Sprintf("catalog %s is listed twice", p), Hint: "list each catalog file once"}
		}
		c.Catalogs = append(c.Catalogs, p)
	}
	c.CacheTTL = DefaultCacheTTL
	if s := doc.Discovery.CacheSeconds; s != nil {
		if *s < 1 || *s > maxCacheSeconds {
			return nil, fail("discovery.cache_seconds", outOfRange, fmt.Sprintf("use 1 to %d seconds (the default is %d)", maxCacheSeconds, int(DefaultCacheTTL.Seconds())))
		}
		c.CacheTTL = time.Duration(*s) * time.Second
	}
	if c.Upstreams, err = parseUpstreams(path, dir, data, lines, doc.Upstreams); err != nil {
		return nil, err
	}
	c.OutOfBandApproval, c.ApprovalTTL = true, DefaultApprovalTTL
	if b := doc.Approvals.OutOfBand; b != nil {
		c.OutOfBandApproval = *b
	}
	if s := doc.Approvals.ValidSeconds; s != nil {
		if *s < minApprovalSeconds || *s > maxApprovalSeconds {
			return nil, fail("approvals.valid_seconds", outOfRange,
				fmt.Sprintf("use %d to %d seconds (the default is %d)", minApprovalSeconds, maxApprovalSeconds, int(DefaultApprovalTTL.Seconds())))
		}
		c.ApprovalTTL = time.Duration(*s) * time.Second
	}
	return c, nil
}

// maxAllowPrivate bounds http.allow_private: every dial checks the list.
const maxAllowPrivate = 64

// outOfRange is the message for a number outside its bounds; the hint
// gives the bounds. A rejected value is never repeated.
const outOfRange = "out of range (value not shown)"

// DefaultApprovalTTL is how long an out-of-band approval stays valid
// unless approvals.valid_seconds says otherwise: long enough for a person
// to switch to a terminal, short enough that a forgotten approval does not
// wait for a later, unrelated call.
const DefaultApprovalTTL = 10 * time.Minute

// DefaultReconcileInterval is how often a running server reconciles the
// ledger unless ledger_reconcile_seconds says otherwise. Every run asks the
// chain about each payment still unknown, so a short interval costs RPC
// calls while one waits for its validBefore.
const DefaultReconcileInterval = 30 * time.Second

// DefaultKnownTerms is how long terms seen for a method and URL let a fetch
// pay on its first request, unless http.known_terms_seconds says
// otherwise. A server that changed its price meanwhile answers 402, and the
// fetch then pays on the new terms, so a long reuse costs a round trip,
// never money twice.
const DefaultKnownTerms = 300 * time.Second

// maxKnownTermsSeconds bounds http.known_terms_seconds: one day.
const maxKnownTermsSeconds = 24 * 3600

// The bounds of ledger_reconcile_seconds; ledger.ReconcileEvery accepts
// the same.
const (
	minReconcileSeconds = 1
	maxReconcileSeconds = 3600
)

const (
	minApprovalSeconds = 30
	maxApprovalSeconds = 24 * 3600
)

// finish does the checks that must wait for the environment: every
// network has an RPC URL, and the policy file is read.
func (c *Config) finish() error {
	for i, n := range c.Networks {
		if n.RPCURL != "" {
			continue
		}
		key := fmt.Sprintf("networks[%d].rpc_url", i)
		line := tableLine(c.data, "networks", i)
		if l := c.lines[fmt.Sprintf("networks[%d].id", i)]; l > 0 {
			line = l
		}
		return &Error{Path: c.Path, Line: line, Key: key, Msg: fmt.Sprintf("network %s has no rpc_url", n.ID),
			Hint: fmt.Sprintf(`add rpc_url = "https://…" to this table, or set %s%s`, EnvRPCPrefix, n.ChainID)}
	}
	if c.PolicyPath != "" {
		// The policy is read after the tokens: its per-token rules are in
		// token units, which need the registry's decimals.
		p, err := policy.Load(c.PolicyPath, c.Registry)
		if err != nil {
			if c.policyVar != "" {
				return &Error{Var: c.policyVar, Msg: err.Error(), Err: err}
			}
			return err
		}
		c.Policy = p
	}
	c.lines, c.data = nil, nil
	return nil
}

func (t Token) token() (tokens.Token, error) {
	if t.Decimals == nil {
		return tokens.Token{}, errors.New("decimals is missing")
	}
	if *t.Decimals < 0 || *t.Decimals > 36 {
		return tokens.Token{}, errors.New("decimals is out of range (value not shown): it must be from 0 to 36")
	}
	if !common.IsHexAddress(t.Address) || !strings.HasPrefix(t.Address, "0x") {
		return tokens.Token{}, errors.New("address is not a 0x-prefixed 20-byte hex address (value not shown)")
	}
	return tokens.Token{
		Network:  t.Network,
		Address:  common.HexToAddress(t.Address),
		Symbol:   t.Symbol,
		Name:     t.Name,
		Version:  t.Version,
		Decimals: uint8(*t.Decimals),
		Currency: t.Currency,
	}, nil
}

// go-toml's two phrasings of a type mismatch, compiled on first use (only
// a bad config needs them) rather than at every start (issue 10, goal 3).
var (
	goDecodeError = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^cannot decode TOML (\w+) into struct field \S+ of type (\S+)$`)
	})
	goAssignError = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\w+) cannot be assigned to (\S+)$`) })
)

// plainTypeError rewords go-toml's type errors without Go type names.
func plainTypeError(msg string) string {
	found, goType := "", ""
	if m := goDecodeError().FindStringSubmatch(msg); m != nil {
		found, goType = m[1], m[2]
	} else if m := goAssignError().FindStringSubmatch(msg); m != nil {
		found, goType = m[1], m[2]
	} else {
		return msg
	}
	want := map[string]string{"int64": "a whole number", "*int64": "a whole number", "*int": "a whole number", "int": "a whole number", "string": "a quoted string", "[]string": "a list of quoted strings"}[goType]
	if want == "" {
		want = "another type"
	}
	article := "a"
	if strings.ContainsRune("aeiou", rune(found[0])) {
		article = "an"
	}
	return fmt.Sprintf("expected %s, found %s %s", want, article, found)
}

func resolve(dir, p string) string {
	if p == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// tomlError turns go-toml's errors into ones that name file, line and key.
func tomlError(path string, data []byte, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		d := strict.Errors[0]
		row, _ := d.Position()
		key := strings.Join(d.Key(), ".")
		if k := keyAt(data, row); k != "" {
			// go-toml names a key in an array of tables without its index
			// ("networks.rpc"); the scanner knows which entry it is.
			key = k
		}
		return &Error{Path: path, Line: row, Key: key, Msg: "unknown key",
			Hint: "check the spelling against the configuration reference in README.md"}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		// go-toml quotes the text it could not read (a number too large,
		// a key pasted unquoted): the value is not shown.
		e := &Error{Path: path, Line: row, Key: strings.Join(de.Key(), "."), Msg: redact.Unquote(plainTypeError(strings.TrimPrefix(de.Error(), "toml: ")))}
		if e.Key == "" {
			e.Key = keyAt(data, row)
		}
		if strings.HasPrefix(e.Msg, "expected a quoted string, found") {
			e.Hint = "write the value in quotes"
		}
		return e
	}
	e := &Error{Path: path, Msg: redact.Unquote(strings.TrimPrefix(err.Error(), "toml: "))}
	if strings.Contains(e.Msg, "already defined") {
		// go-toml reports a redefined key without its position.
		e.Key, e.Line = duplicateKey(data)
	}
	return e
}

package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/x402-mcp/x402-mcp/tokens"
)

// Bounds on what the file may list. They are far above any real setup and
// keep a pasted list of thousands of URLs from turning into thousands of
// connections.
const (
	maxNetworks     = 64
	maxFacilitators = 16
	maxCatalogs     = 64
	maxURLLength    = 2048
	maxCacheSeconds = 86400
)

// DefaultCacheTTL is how long discovery results are reused when the file
// does not set discovery.cache_seconds.
const DefaultCacheTTL = 5 * time.Minute

// NetworkEntry is one [[networks]] table as written in the file.
type NetworkEntry struct {
	ID     string `toml:"id"`
	RPCURL string `toml:"rpc_url"`
	// Explorer is a block explorer's transaction URL prefix, e.g.
	// "https://basescan.org/tx/": the console links a transaction hash
	// to Explorer + hash. Optional; without it nothing is linked.
	Explorer string `toml:"explorer"`
}

// Discovery is the [discovery] table as written in the file.
type Discovery struct {
	Facilitators []string `toml:"facilitators"`
	Catalogs     []string `toml:"catalogs"`
	// CacheSeconds is a pointer so that a missing key (the default) and
	// an explicit 0 (refused) can be told apart.
	CacheSeconds *int64 `toml:"cache_seconds"`
}

// Network says how to reach one EVM chain.
//
// RPCURL may hold a provider's API key (in its path, query or user info),
// so every rendering of a Network (fmt with any verb, slog) shows only the
// scheme and host. Read the field itself to dial it.
type Network struct {
	// ID is the CAIP-2 id, e.g. "eip155:8453".
	ID string
	// ChainID is the numeric part of ID.
	ChainID *big.Int
	// RPCURL is an http(s) or ws(s) JSON-RPC endpoint.
	RPCURL string
	// Explorer is the transaction URL prefix of a block explorer
	// (https, or http to this machine), "" when none is configured.
	Explorer string
}

// String shows the network and a redacted endpoint.
func (n Network) String() string { return n.ID + " via " + RedactURL(n.RPCURL) }

// GoString keeps %#v from printing the raw URL.
func (n Network) GoString() string { return "config.Network{" + n.String() + "}" }

// Format makes every fmt verb (including %+v and %#v) use the redacted form.
func (n Network) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, n.GoString())
		return
	}
	fmt.Fprint(f, n.String())
}

// MarshalJSON keeps encoding/json (and so slog's JSON handler, which
// marshals a slice of networks without calling LogValue) from writing the
// raw URL.
func (n Network) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID  string `json:"id"`
		RPC string `json:"rpc"`
	}{n.ID, RedactURL(n.RPCURL)})
}

// LogValue keeps slog from reflecting over the raw URL.
func (n Network) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", n.ID), slog.String("rpc", RedactURL(n.RPCURL)))
}

// urlKind selects the schemes a URL may use.
type urlKind int

const (
	rpcURL urlKind = iota
	facilitatorURL
	explorerURL
)

// urlProblem is a refused URL: what is wrong and what to do. Neither text
// contains the URL's user info, path or query.
type urlProblem struct{ msg, hint string }

// checkURL validates a URL from the file or the environment and returns it
// normalised (a facilitator's trailing "/" removed, so that paths can be
// appended). Messages show the URL only through RedactURL.
func checkURL(raw string, kind urlKind) (string, *urlProblem) {
	shown := "URL " + RedactURL(raw)
	if strings.HasPrefix(RedactURL(raw), "(") {
		shown = "the URL (not shown: it may hold a key)"
	}
	if raw == "" {
		return "", &urlProblem{"the URL is empty", "write the full URL, e.g. \"https://mainnet.base.org\""}
	}
	if len(raw) > maxURLLength {
		return "", &urlProblem{fmt.Sprintf("%s is longer than %d characters", shown, maxURLLength), "check that the value is one URL"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the input, which may hold a key: say only that
		// it did not parse.
		return "", &urlProblem{"the value is not a valid URL (not shown: it may hold a key)", "write it as scheme://host[:port]/path"}
	}
	schemes := []string{"http", "https", "ws", "wss"}
	example := "https://mainnet.base.org"
	switch kind {
	case facilitatorURL:
		schemes = []string{"http", "https"}
		example = "https://x402.org/facilitator"
	case explorerURL:
		schemes = []string{"http", "https"}
		example = "https://basescan.org/tx/"
	}
	scheme := strings.ToLower(u.Scheme)
	if !slices.Contains(schemes, scheme) {
		return "", &urlProblem{fmt.Sprintf("%s has scheme %q", shown, truncate(u.Scheme, 16)),
			fmt.Sprintf("use one of %s, e.g. %q", strings.Join(schemes, ", "), example)}
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "", &urlProblem{fmt.Sprintf("%s has no host", shown), fmt.Sprintf("write it as %s", example)}
	}
	if u.User != nil {
		hint := "drop the user:password@ part"
		if kind == rpcURL {
			hint = "user:password@ is not supported; use the provider's URL form with the key in the path or query"
		}
		return "", &urlProblem{fmt.Sprintf("%s holds user info (user:password@, not shown)", shown), hint}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", &urlProblem{fmt.Sprintf("%s has an invalid port", shown), "use a port from 1 to 65535"}
		}
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", &urlProblem{fmt.Sprintf("%s has a #fragment", shown), "remove the # part: it is never sent to the server"}
	}
	// Plain http or ws can be read and rewritten on the way: a lying RPC
	// node or facilitator would misreport balances and authorization state
	// or steer discovery. On this machine nobody is in between.
	if (scheme == "http" || scheme == "ws") && !isLoopbackHost(u.Hostname()) {
		return "", &urlProblem{fmt.Sprintf("%s uses plain %s to another machine", shown, scheme),
			fmt.Sprintf("use %ss:// (plain %s is allowed only to this machine: localhost, 127.0.0.1, ::1)", scheme, scheme)}
	}
	if kind == explorerURL {
		if u.RawQuery != "" || u.ForceQuery {
			return "", &urlProblem{fmt.Sprintf("%s has a query", shown), "give the explorer's transaction URL prefix; the hash is appended to it, e.g. \"https://basescan.org/tx/\""}
		}
		return raw, nil
	}
	if kind == facilitatorURL {
		if u.RawQuery != "" || u.ForceQuery {
			return "", &urlProblem{fmt.Sprintf("%s has a query", shown), "give the facilitator's base URL; /discovery/resources is appended to it"}
		}
		return strings.TrimRight(raw, "/"), nil
	}
	return raw, nil
}

// RedactURL shows a URL without anything that may carry a credential: user
// info, path and query are replaced by "…" (RPC providers put API keys in
// any of them). A value that does not parse is not shown at all.
func RedactURL(raw string) string {
	if raw == "" {
		return `""`
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || len(raw) > maxURLLength {
		return "(URL not shown)"
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(truncate(u.Scheme, 16)))
	b.WriteString("://")
	if u.User != nil {
		b.WriteString("…@")
	}
	b.WriteString(truncate(u.Host, 253))
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		b.WriteString("/…")
	}
	return b.String()
}

// isLoopbackHost reports whether host names this machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// parseNetworks checks the [[networks]] tables. A missing rpc_url is
// reported later, after the environment had its chance to supply one.
func parseNetworks(path string, doc []NetworkEntry, at func(i int, key string) (int, string)) ([]Network, error) {
	if len(doc) > maxNetworks {
		line, _ := at(maxNetworks, "id")
		return nil, &Error{Path: path, Line: line, Key: "networks", Msg: fmt.Sprintf("more than %d networks", maxNetworks)}
	}
	var out []Network
	first := map[string]int{}
	for i, e := range doc {
		line, key := at(i, "id")
		if e.ID == "" {
			return nil, &Error{Path: path, Line: line, Key: key, Msg: "id is missing", Hint: `add id = "eip155:8453" (a CAIP-2 id)`}
		}
		chain, err := tokens.ParseNetwork(e.ID)
		if err != nil {
			return nil, &Error{Path: path, Line: line, Key: key, Msg: err.Error(),
				Hint: `use a CAIP-2 id such as "eip155:8453" (Base); only EVM (eip155) networks are supported`}
		}
		if prev, dup := first[e.ID]; dup {
			msg := fmt.Sprintf("network %s is listed twice", e.ID)
			if prev > 0 {
				msg += fmt.Sprintf(" (first on line %d)", prev)
			}
			return nil, &Error{Path: path, Line: line, Key: key, Msg: msg, Hint: "keep one [[networks]] table per network"}
		}
		first[e.ID] = line
		n := Network{ID: e.ID, ChainID: chain}
		if e.RPCURL != "" {
			line, key := at(i, "rpc_url")
			u, p := checkURL(e.RPCURL, rpcURL)
			if p != nil {
				return nil, &Error{Path: path, Line: line, Key: key, Msg: p.msg, Hint: p.hint}
			}
			n.RPCURL = u
		}
		if e.Explorer != "" {
			line, key := at(i, "explorer")
			u, p := checkURL(e.Explorer, explorerURL)
			if p != nil {
				return nil, &Error{Path: path, Line: line, Key: key, Msg: p.msg, Hint: p.hint}
			}
			n.Explorer = u
		}
		out = append(out, n)
	}
	return out, nil
}

// checkFacilitators validates a list of facilitator base URLs; where names
// element i in messages.
func checkFacilitators(list []string, where func(i int) *Error) ([]string, error) {
	if len(list) > maxFacilitators {
		e := where(maxFacilitators)
		e.Msg = fmt.Sprintf("more than %d facilitators", maxFacilitators)
		return nil, e
	}
	var out []string
	for i, raw := range list {
		u, p := checkURL(strings.TrimSpace(raw), facilitatorURL)
		if p != nil {
			e := where(i)
			e.Msg, e.Hint = p.msg, p.hint
			return nil, e
		}
		if slices.Contains(out, u) {
			e := where(i)
			e.Msg, e.Hint = fmt.Sprintf("facilitator %s is listed twice", RedactURL(u)), "list each facilitator once"
			return nil, e
		}
		out = append(out, u)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

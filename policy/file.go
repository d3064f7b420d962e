package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/pelletier/go-toml/v2"

	"github.com/x402-mcp/x402-mcp/internal/fileerr"
	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/internal/suggest"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// maxFileSize bounds a policy file. The file is the operator's, but a wrong
// path (a log, a binary) should fail at once, not fill memory.
const maxFileSize = 1 << 20

// FileError is a problem in a policy file: where (file, line when known,
// key), what, and what to do about it.
type FileError = fileerr.Error

// Load reads a policy file; see Parse.
func Load(path string, reg *tokens.Registry) (Policy, error) {
	if redact.LooksSecret(path) {
		return Policy{}, fmt.Errorf("policy: %s\n\thint: give the path of the policy file", redact.LooksLikeKey)
	}
	f, err := os.Open(path)
	if err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Policy{}, fmt.Errorf("policy: reading %s: %w", path, err)
	}
	return Parse(path, data, reg)
}

// Parse reads the TOML text of a policy file; path names the file in
// errors. reg supplies the tokens that tokens and token_limits may name
// and their decimals; nil means tokens.Builtin().
//
// The file is strict: an unknown key, a key set twice, a value of the
// wrong type, a float anywhere (amounts are quoted decimal strings, which
// floats cannot hold exactly) or an amount with more decimals than its
// token has is an error naming the file, line and key (*FileError).
//
// A key the file leaves out keeps its default, the value Default() has
// when there is no file at all: max_per_payment (0.10 USD), budget.day
// (1.00 USD in any 24 hours), max_payments_per_minute (30),
// max_authorization_seconds (300), require_https/allow_http_loopback
// (https except to this machine) and payment_flows (only the standard
// flow, where the server settles after doing the work). A file written to
// add one rule (a host allow list) must not lose the others: a payment
// with no cap, a budget or loop breaker that vanished, an authorization
// valid for ever, plain http to the internet or money taken before the
// work must never be the result of forgetting a line. A limit is
// loosened only by writing it: a larger value, or "none" (budget.day =
// "none", max_payments_per_minute = "none", approval_above = "none") to
// turn it off. max_per_payment cannot be turned off. Rules without a
// default (approval_above, the other budget periods, per-host budgets,
// networks, tokens, hosts, payees, token limits) are off unless written.
// The keys the file wrote are recorded in Policy.Written, so that
// Describe can tell the operator's rules from the defaults.
func Parse(path string, data []byte, reg *tokens.Registry) (Policy, error) {
	if reg == nil {
		reg = tokens.Builtin()
	}
	if len(data) > maxFileSize {
		return Policy{}, &FileError{Path: path, Msg: fmt.Sprintf("the file is larger than %d bytes", maxFileSize),
			Hint: "check that this is the policy file"}
	}
	idx := indexKeys(data)
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return Policy{}, syntaxError(path, idx, err)
	}
	d := &decoder{path: path, idx: idx, reg: reg}
	p := d.policy(doc)
	if err := d.first(); err != nil {
		return Policy{}, err
	}
	if err := p.Validate(); err != nil {
		// Parse checks everything Validate does, with positions; this is a
		// second line of defence.
		return Policy{}, &FileError{Path: path, Msg: err.Error()}
	}
	return p, nil
}

// syntaxError turns go-toml's errors into a FileError with a position.
func syntaxError(path string, idx *keyIndex, err error) error {
	if idx.dup != "" {
		// go-toml reports a redefinition without a position; the index
		// found which one it is.
		return &FileError{Path: path, Line: idx.dupLine, Key: idx.dup, Msg: "defined twice",
			Hint: "set each key once, and open each [table] once"}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		// go-toml quotes the text it could not read (a number too large,
		// a key pasted unquoted): the value is not shown.
		return &FileError{Path: path, Line: row, Key: idx.keyAt(row), Msg: redact.Unquote(strings.TrimPrefix(de.Error(), "toml: ")),
			Hint: "this is not valid TOML; compare with the commented example policy file"}
	}
	return &FileError{Path: path, Msg: redact.Unquote(strings.TrimPrefix(err.Error(), "toml: "))}
}

// decoder checks the decoded document against the schema, collecting
// every problem so that the one reported is the first in the file, not the
// first in Go's random map order.
type decoder struct {
	path string
	idx  *keyIndex
	reg  *tokens.Registry
	errs []*FileError
	// written collects the keys the file sets (Policy.Written).
	written map[string]bool
}

// lookup returns tbl's value for k and records the key (under prefix) as
// written by the file.
func (d *decoder) lookup(tbl map[string]any, prefix, k string) (any, bool) {
	v, ok := tbl[k]
	if ok && d.written != nil {
		d.written[join(prefix, k)] = true
	}
	return v, ok
}

// None is how a policy file turns off a limit that has a default (or
// says explicitly that one without a default is off): budget.day =
// "none", max_payments_per_minute = "none", approval_above = "none".
const None = "none"

func isNone(v any) bool {
	s, ok := v.(string)
	return ok && s == None
}

func (d *decoder) fail(key, msg, hint string) {
	d.failAt(key, d.idx.line(key), msg, hint)
}

func (d *decoder) failAt(key string, line int, msg, hint string) {
	d.errs = append(d.errs, &FileError{Path: d.path, Line: line, Key: key, Msg: msg, Hint: hint})
}

func (d *decoder) first() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Key < b.Key
	})
	return d.errs[0]
}

const (
	topLevelKeys    = "max_per_payment, approval_above, max_payments_per_minute, max_authorization_seconds, require_https, allow_http_loopback, networks, tokens and payment_flows"
	topLevelTables  = `[budget], [hosts], [hosts.budget."HOST"], [payees] and [token_limits."CAIP-19 TOKEN"]`
	hintHostPattern = `write a host such as "api.example.com", or "*.example.com" for its subdomains; leave hosts.allow empty to allow any host`
)

var periodKeys = []string{"hour", "day", "week", "month", "total"}

func (d *decoder) policy(doc map[string]any) Policy {
	// Start from the defaults: a key the file leaves out keeps its
	// default, whatever else the file says.
	p := Default()
	p.Written = map[string]bool{}
	d.written = p.Written
	d.keys("", doc, []string{"max_per_payment", "approval_above", "max_payments_per_minute", "max_authorization_seconds",
		"require_https", "allow_http_loopback", "networks", "tokens", "budget", "hosts", "payees", "token_limits",
		"payment_flows"},
		"the top-level keys are "+topLevelKeys+"; the tables are "+topLevelTables)

	if v, ok := d.lookup(doc, "", "max_per_payment"); ok {
		if isNone(v) {
			d.fail("max_per_payment", `max_per_payment cannot be "none": every payment needs a cap`,
				`write the most one payment may cost, such as "1.00"`)
		} else if u, ok := d.usd("max_per_payment", v, false); ok {
			p.MaxPerPayment = u
		}
	}
	if v, ok := d.lookup(doc, "", "approval_above"); ok {
		if u, ok := d.usd("approval_above", v, true); ok {
			p.ApprovalAbove = u
		}
	}
	if v, ok := d.lookup(doc, "", "max_payments_per_minute"); ok {
		if _, isString := v.(string); isNone(v) {
			p.MaxPaymentsPerMinute = 0
		} else if isString {
			d.fail("max_payments_per_minute", `expected a whole number or "none", found another string (value not shown)`,
				`write a number from 1 to 1000 without quotes, or "none" for no limit`)
		} else if n, ok := d.integer("max_payments_per_minute", v, 1, 1000,
			`write max_payments_per_minute = "none" for no limit`); ok {
			p.MaxPaymentsPerMinute = int(n)
		}
	}
	if v, ok := d.lookup(doc, "", "max_authorization_seconds"); ok {
		if n, ok := d.integer("max_authorization_seconds", v, int64(minWindow/time.Second), int64(maxWindow/time.Second),
			"servers usually ask for 60 to 300 seconds; a signed authorization can be used by whoever holds it until it expires"); ok {
			p.MaxWindow = time.Duration(n) * time.Second
		}
	}
	requireHTTPS, loopback := true, true
	if v, ok := d.lookup(doc, "", "require_https"); ok {
		requireHTTPS, _ = d.boolean("require_https", v)
	}
	if v, ok := d.lookup(doc, "", "allow_http_loopback"); ok {
		loopback, _ = d.boolean("allow_http_loopback", v)
		if !loopback && !requireHTTPS {
			d.fail("allow_http_loopback", "allow_http_loopback = false has no effect with require_https = false",
				"require_https = false allows plain http to every host; set require_https = true to refuse it")
		}
	}
	switch {
	case !requireHTTPS:
		p.HTTP = HTTPAnywhere
	case !loopback:
		p.HTTP = HTTPNever
	}

	if v, ok := d.lookup(doc, "", "networks"); ok {
		p.Networks = d.networks(v)
	}
	if v, ok := d.lookup(doc, "", "tokens"); ok {
		p.Tokens = d.tokenList(v, p.Networks)
	}
	if v, ok := d.lookup(doc, "", "payment_flows"); ok {
		p.PaymentFlows = d.paymentFlows(v)
	}
	if v, ok := doc["budget"]; ok {
		p.Budget = d.periods("budget", v, p.Budget)
	}
	if v, ok := doc["hosts"]; ok {
		p.Hosts, p.HostBudgets = d.hosts(v)
	}
	if v, ok := d.lookup(doc, "", "payees"); ok {
		p.Payees = d.payees(v)
	}
	if v, ok := d.lookup(doc, "", "token_limits"); ok {
		p.TokenLimits = d.tokenLimits(v)
	}
	return p
}

// keys reports keys of tbl (at path prefix) that the schema does not know.
func (d *decoder) keys(prefix string, tbl map[string]any, known []string, hint string) {
	for k, v := range tbl {
		if slices.Contains(known, k) {
			continue
		}
		key := join(prefix, k)
		what := "unknown key"
		if _, ok := v.(map[string]any); ok {
			what = "unknown table"
		}
		h := hint
		if s := suggest.Nearest(k, known); s != "" {
			h = fmt.Sprintf("did you mean %q? %s", s, hint)
		}
		d.fail(key, what, h)
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return keyPath(k)
	}
	return prefix + "." + keyPath(k)
}

// table expects v to be a table.
func (d *decoder) table(key string, v any) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		d.fail(key, "expected a table, found "+tomlType(v), fmt.Sprintf("write [%s] on its own line, then its keys below it", key))
	}
	return t, ok
}

// usd reads a quoted USD amount; with none, "none" reads as the unset
// amount (no limit). A rejected value is never quoted back: a secret
// pasted into the wrong line of the file must not reach a terminal or a
// log.
func (d *decoder) usd(key string, v any, none bool) (USD, bool) {
	example := `a quoted USD amount such as "0.10"`
	if none {
		example += `, or "none" for no limit`
	}
	s, ok := v.(string)
	if !ok {
		d.fail(key, "expected a quoted USD amount, found "+tomlType(v), amountHint(v, "0.10"))
		return USD{}, false
	}
	if none && s == None {
		return USD{}, true
	}
	if strings.HasPrefix(strings.TrimSpace(s), "-") {
		d.fail(key, "the amount is negative (value not shown)", "write a positive amount: "+example)
		return USD{}, false
	}
	u, err := ParseUSD(s)
	if err != nil {
		d.fail(key, err.Error(), "write "+example)
		return USD{}, false
	}
	return u, true
}

func (d *decoder) integer(key string, v any, lo, hi int64, hint string) (int64, bool) {
	n, ok := v.(int64)
	if !ok {
		d.fail(key, "expected a whole number, found "+tomlType(v), fmt.Sprintf("write a number from %d to %d without quotes", lo, hi))
		return 0, false
	}
	if n < lo || n > hi {
		d.fail(key, fmt.Sprintf("out of range (value not shown): it must be from %d to %d", lo, hi), hint)
		return 0, false
	}
	return n, true
}

func (d *decoder) boolean(key string, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		d.fail(key, "expected true or false, found "+tomlType(v), "write true or false without quotes")
		// The safe reading of a broken switch is its default (true for
		// both switches there are); the error stops the load anyway.
		return true, false
	}
	return b, true
}

// stringList expects a list of strings; each element's line is key[i] in the
// index.
func (d *decoder) stringList(key string, v any, example string) []string {
	list, ok := v.([]any)
	if !ok {
		d.fail(key, "expected a list of quoted strings, found "+tomlType(v), fmt.Sprintf("write a list such as [%s]", example))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			d.failElem(key, i, "expected a quoted string, found "+tomlType(e), fmt.Sprintf("write a list such as [%s]", example))
			continue
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) failElem(key string, i int, msg, hint string) {
	line := d.idx.line(fmt.Sprintf("%s[%d]", key, i))
	if line == 0 {
		line = d.idx.line(key)
	}
	d.failAt(key, line, msg, hint)
}

func (d *decoder) networks(v any) []string {
	list := d.stringList("networks", v, `"eip155:8453"`)
	known := d.reg.Networks()
	for i, n := range list {
		if _, err := tokens.ParseNetwork(n); err != nil {
			d.failElem("networks", i, err.Error(), `use CAIP-2 ids such as "eip155:8453" (Base) or "eip155:84532" (Base Sepolia)`)
			continue
		}
		if !slices.Contains(known, n) {
			d.failElem("networks", i, fmt.Sprintf("network %s has no token in the token registry", n),
				"check the chain id, or add the network's token to the registry in the configuration")
		}
	}
	return list
}

// paymentFlows reads payment_flows: the flows allowed besides the standard
// one. Only names x402 defines are accepted; the standard flow may be
// listed, though it is always allowed.
func (d *decoder) paymentFlows(v any) []string {
	const hint = `the flows are "upfront" and "escrow" (the server settles before it does the work); the standard flow, "authorization", is always allowed`
	list := d.stringList("payment_flows", v, `"upfront"`)
	out := make([]string, 0, len(list))
	for i, f := range list {
		if !x402.KnownPaymentFlow(f) {
			h := hint
			if s := suggest.Nearest(f, []string{x402.FlowAuthorization, x402.FlowUpfront, x402.FlowEscrow}); s != "" {
				h = fmt.Sprintf("did you mean %q? %s", s, hint)
			}
			d.failElem("payment_flows", i, fmt.Sprintf("payment flow %s is not one x402 defines", redact.Quote(f)), h)
			continue
		}
		if f != x402.FlowAuthorization && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func (d *decoder) tokenList(v any, networks []string) []tokens.Token {
	var out []tokens.Token
	for i, s := range d.stringList("tokens", v, `"eip155:8453/erc20:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"`) {
		t, msg, hint := d.token(s)
		if msg != "" {
			d.failElem("tokens", i, msg, hint)
			continue
		}
		if len(networks) > 0 && !slices.Contains(networks, t.Network) {
			d.failElem("tokens", i, fmt.Sprintf("token %s is on network %s, which networks does not allow", s, t.Network),
				"add the network to networks, or remove the token")
			continue
		}
		out = append(out, t)
	}
	return out
}

// token resolves a CAIP-19 id against the registry; msg is empty on
// success.
func (d *decoder) token(id string) (t tokens.Token, msg, hint string) {
	network, addr, err := ParseTokenID(id)
	if err != nil {
		return t, err.Error(), `write a CAIP-19 token id such as "eip155:8453/erc20:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"`
	}
	t, ok := d.reg.Lookup(network, addr)
	if !ok {
		return t, fmt.Sprintf("token %s is not in the token registry", redact.Quote(id)),
			"check the network and address, or add the token to the registry in the configuration"
	}
	return t, "", ""
}

// periods reads a budget table over base: a period the table does not
// name keeps base's value, and "none" turns it off.
func (d *decoder) periods(key string, v any, base Periods) Periods {
	ps := base
	t, ok := d.table(key, v)
	if !ok {
		return ps
	}
	d.keys(key, t, periodKeys, `a budget takes hour, day, week, month (30 days) and total, each a quoted USD amount or "none"`)
	for _, per := range periods {
		if v, ok := d.lookup(t, key, per.name); ok {
			if u, ok := d.usd(join(key, per.name), v, true); ok {
				*per.field(&ps) = u
			}
		}
	}
	return ps
}

func (d *decoder) hosts(v any) (HostRules, map[string]Periods) {
	var rules HostRules
	t, ok := d.table("hosts", v)
	if !ok {
		return rules, nil
	}
	d.keys("hosts", t, []string{"allow", "deny", "budget"}, `[hosts] takes allow, deny and budget tables such as [hosts.budget."api.example.com"]`)
	patterns := func(key string, v any) []HostPattern {
		var out []HostPattern
		for i, s := range d.stringList(key, v, `"api.example.com", "*.example.org"`) {
			hp, err := ParseHostPattern(s)
			if err != nil {
				d.failElem(key, i, err.Error(), hintHostPattern)
				continue
			}
			out = append(out, hp)
		}
		return out
	}
	if v, ok := d.lookup(t, "hosts", "allow"); ok {
		rules.Allow = patterns("hosts.allow", v)
	}
	if v, ok := d.lookup(t, "hosts", "deny"); ok {
		rules.Deny = patterns("hosts.deny", v)
	}
	v, ok = d.lookup(t, "hosts", "budget")
	if !ok {
		return rules, nil
	}
	bt, ok := d.table("hosts.budget", v)
	if !ok {
		return rules, nil
	}
	budgets := map[string]Periods{}
	names := map[string]string{}
	// In file order, so that of two tables for one host the second is the
	// one reported.
	order := make([]string, 0, len(bt))
	for name := range bt {
		order = append(order, name)
	}
	sort.Slice(order, func(i, j int) bool {
		li, lj := d.idx.line(join("hosts.budget", order[i])), d.idx.line(join("hosts.budget", order[j]))
		if li != lj {
			return li < lj
		}
		return order[i] < order[j]
	})
	for _, name := range order {
		v := bt[name]
		key := join("hosts.budget", name)
		if strings.HasPrefix(name, "*") {
			d.fail(key, "a per-host budget needs an exact host name, not a pattern",
				"list each host in its own table, or use [budget] for all hosts together")
			continue
		}
		h, err := hostOfString(name)
		if err != nil {
			d.fail(key, err.Error(), `name the host as in its URL, such as [hosts.budget."api.example.com"]`)
			continue
		}
		if prev, ok := names[h.name]; ok {
			d.fail(key, fmt.Sprintf("%s and %s are the same host", redact.Quote(prev), redact.Quote(name)), "keep one table per host")
			continue
		}
		names[h.name] = name
		before := len(d.errs)
		ps := d.periods(key, v, Periods{})
		if !ps.IsSet() && len(d.errs) == before {
			d.fail(key, "sets no budget", "give at least one of hour, day, week, month and total, or remove the table")
			continue
		}
		budgets[h.name] = ps
	}
	return rules, budgets
}

func (d *decoder) payees(v any) PayeeRules {
	var rules PayeeRules
	t, ok := d.table("payees", v)
	if !ok {
		return rules
	}
	d.keys("payees", t, []string{"allow", "deny"}, "[payees] takes allow and deny, lists of 0x addresses")
	addresses := func(key string, v any) []common.Address {
		var out []common.Address
		for i, s := range d.stringList(key, v, `"0x209693Bc6afc0C5328bA36FaF03C514EF312287C"`) {
			a, err := ParseAddress(s)
			if err != nil {
				d.failElem(key, i, err.Error(), "copy the address exactly, with its 0x prefix; mixed case must be a valid EIP-55 checksum")
				continue
			}
			out = append(out, a)
		}
		return out
	}
	if v, ok := d.lookup(t, "payees", "allow"); ok {
		rules.Allow = addresses("payees.allow", v)
	}
	if v, ok := d.lookup(t, "payees", "deny"); ok {
		rules.Deny = addresses("payees.deny", v)
	}
	return rules
}

func (d *decoder) tokenLimits(v any) []TokenLimit {
	t, ok := d.table("token_limits", v)
	if !ok {
		return nil
	}
	ids := make([]string, 0, len(t))
	for id := range t {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []TokenLimit
	for _, id := range ids {
		key := join("token_limits", id)
		tok, msg, hint := d.token(id)
		if msg != "" {
			d.fail(key, msg, hint)
			continue
		}
		lt, ok := d.table(key, t[id])
		if !ok {
			continue
		}
		before := len(d.errs)
		d.keys(key, lt, []string{"max_per_payment"}, "a token limit takes max_per_payment, in units of the token")
		mv, ok := lt["max_per_payment"]
		if !ok {
			if len(d.errs) > before {
				continue // an unknown key there says more than "sets no limit"
			}
			d.fail(key, "sets no limit", `add max_per_payment = "0.50" (in units of the token), or remove the table`)
			continue
		}
		mkey := join(key, "max_per_payment")
		s, ok := mv.(string)
		if !ok {
			d.fail(mkey, "expected a quoted amount of the token, found "+tomlType(mv), amountHint(mv, "0.50"))
			continue
		}
		if strings.HasPrefix(s, "-") {
			d.fail(mkey, "the amount is negative (value not shown)", `write a positive amount such as "0.50"`)
			continue
		}
		units, err := tokens.ParseUnits(s, tok.Decimals)
		if err != nil {
			d.fail(mkey, err.Error(), fmt.Sprintf("%s has %d decimals; write an amount of whole %s such as \"0.50\"", tok, tok.Decimals, tok.Symbol))
			continue
		}
		out = append(out, TokenLimit{Token: tok, MaxPerPayment: units})
	}
	return out
}

// amountHint says how to write an amount given as v.
func amountHint(v any, example string) string {
	h := fmt.Sprintf("write amounts as quoted decimal strings such as %q", example)
	if _, ok := v.(float64); ok {
		h += fmt.Sprintf(": a float cannot hold %s exactly", example)
	}
	return h
}

// tomlType names the TOML type of a decoded value, for messages.
func tomlType(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	// Numbers are not shown: a rejected value is never repeated.
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return fmt.Sprintf("a boolean (%v)", v)
	case []any:
		for _, e := range v {
			if _, ok := e.(map[string]any); ok {
				return "an array of tables"
			}
		}
		return "a list"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

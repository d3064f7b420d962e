package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

const (
	usdcBaseSepolia = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
	payee           = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
)

// optionFields are the members of a good v2 option, in wire order.
var optionFields = [][2]string{
	{"scheme", `"exact"`},
	{"network", `"eip155:84532"`},
	{"amount", `"10000"`},
	{"asset", `"` + usdcBaseSepolia + `"`},
	{"payTo", `"` + payee + `"`},
	{"maxTimeoutSeconds", `60`},
	{"extra", `{"name":"USDC","version":"2"}`},
}

// drop, given as a value to option, removes the member.
const drop = "\x00drop"

// option writes a good v2 option with some members replaced (raw JSON
// values), removed (drop) or appended (keys not in optionFields).
func option(changes ...string) string {
	set := map[string]string{}
	var order []string
	for i := 0; i+1 < len(changes); i += 2 {
		set[changes[i]] = changes[i+1]
		order = append(order, changes[i])
	}
	var parts []string
	seen := map[string]bool{}
	for _, kv := range optionFields {
		seen[kv[0]] = true
		v, ok := set[kv[0]]
		if !ok {
			v = kv[1]
		}
		if v != drop {
			parts = append(parts, strconv.Quote(kv[0])+":"+v)
		}
	}
	for _, k := range order {
		if !seen[k] && set[k] != drop {
			parts = append(parts, strconv.Quote(k)+":"+set[k])
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// v2Doc writes a v2 PaymentRequired document with the given options.
func v2Doc(options ...string) string {
	return `{"x402Version":2,"error":"payment required","resource":{"url":"https://api.example.com/x","description":"d","mimeType":"application/json"},"accepts":[` +
		strings.Join(options, ",") + `]}`
}

func headerWith(doc string) http.Header {
	return http.Header{"Payment-Required": {base64.StdEncoding.EncodeToString([]byte(doc))}}
}

// urlSafe encodes doc with the URL-safe alphabet, shifting it with leading
// spaces until the encoding actually differs from the standard one.
func urlSafe(doc string) string {
	for {
		if u := base64.URLEncoding.EncodeToString([]byte(doc)); u != base64.StdEncoding.EncodeToString([]byte(doc)) {
			return u
		}
		doc = " " + doc
	}
}

func TestParseResponseWholeErrors(t *testing.T) {
	many := make([]string, MaxOptions+1)
	for i := range many {
		many[i] = option()
	}
	deep := `{"x402Version":2,"accepts":[` + option() + `],"extensions":` +
		strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth) + `}`
	enc := base64.StdEncoding.EncodeToString
	tests := []struct {
		name   string
		header http.Header
		body   string
		kind   ErrorKind
		msg    string // substring of the message
	}{
		{"header too large", http.Header{"Payment-Required": {strings.Repeat("A", MaxHeaderBytes+4)}}, "", ErrTooLarge, "at most 16384"},
		{"body too large", nil, `{"x402Version":1,"accepts":[],"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, ErrTooLarge, "at most 65536"},
		{"too deep", headerWith(deep), "", ErrTooLarge, "deeper than 32"},
		{"too many options", headerWith(v2Doc(many...)), "", ErrTooLarge, "accepts has 33 options"},
		{"bad base64", http.Header{"Payment-Required": {"not base64!"}}, "", ErrBase64, "not standard base64"},
		{"url-safe base64", http.Header{"Payment-Required": {urlSafe(v2Doc(option("extra", `{"name":"???"}`)))}}, "", ErrBase64, ""},
		{"invalid json in header", headerWith(`{"x402Version":2,`), "", ErrInvalidJSON, "truncated"},
		{"invalid json body", nil, `<!DOCTYPE html><html>pay me</html>`, ErrInvalidJSON, `starts with "<!DOCTYPE html>`},
		{"json array", nil, `[{"x402Version":1}]`, ErrInvalidJSON, "not a JSON object"},
		{"trailing data", nil, v2Doc(option()) + ` {}`, ErrInvalidJSON, "after the JSON object"},
		{"invalid utf-8", nil, "{\"x402Version\":1,\"error\":\"\xff\"}", ErrInvalidJSON, "UTF-8"},
		{"syntax error", nil, `{"x402Version":1 "accepts":[]}`, ErrInvalidJSON, "at byte"},
		{"duplicate top-level key", nil, `{"x402Version":1,"x402Version":2,"accepts":[` + option() + `]}`, ErrDuplicateKey, `key "x402Version" appears twice in the top-level object`},
		{"duplicate key in option", headerWith(v2Doc(option(), `{"amount":"1","scheme":"exact","amount":"2"}`)), "", ErrDuplicateKey, `"accepts[1]"`},
		{"duplicate key in extra", headerWith(v2Doc(option("extra", `{"name":"USDC","name":"USD Coin"}`))), "", ErrDuplicateKey, `"accepts[0].extra"`},
		{"duplicate key deep in extensions", headerWith(`{"x402Version":2,"accepts":[` + option() + `],"extensions":{"a":[{"b":{"c":1,"c":2}}]}}`), "", ErrDuplicateKey, `"extensions.a[0].b"`},
		{"escaped duplicate key", nil, `{"x402Version":1,"accepts":[],"\u0061ccepts":[]}`, ErrDuplicateKey, "appears twice"},
		{"case-folded duplicate key", headerWith(v2Doc(option("Amount", `"1"`))), "", ErrDuplicateKey, "differ only in letter case"},
		{"kelvin-sign duplicate key", nil, `{"x402Version":1,"k":1,"\u212a":2,"accepts":[]}`, ErrDuplicateKey, "differ only in letter case"},
		{"header sent twice", http.Header{"Payment-Required": {enc([]byte(v2Doc(option()))), enc([]byte(v2Doc(option())))}}, "", ErrDuplicateKey, "sent 2 times"},
		{"header twice under two spellings", http.Header{"Payment-Required": {enc([]byte(v2Doc(option())))}, "PAYMENT-REQUIRED": {enc([]byte(v2Doc(option())))}}, "", ErrDuplicateKey, "sent 2 times"},
		{"missing version", nil, `{"accepts":[` + option() + `]}`, ErrVersion, "x402Version is missing"},
		{"unknown version", nil, `{"x402Version":3,"accepts":[` + option() + `]}`, ErrVersion, "the JSON number 3"},
		{"string version", nil, `{"x402Version":"1","accepts":[` + option() + `]}`, ErrVersion, "a JSON string"},
		{"float version", nil, `{"x402Version":1.0,"accepts":[` + option() + `]}`, ErrVersion, "1.0"},
		{"v1 in the v2 header", headerWith(`{"x402Version":1,"accepts":[` + option() + `]}`), "", ErrVersion, "only v2 uses"},
		{"no accepts", nil, `{"x402Version":1,"error":"x"}`, ErrNoOptions, "accepts is missing"},
		{"accepts not an array", nil, `{"x402Version":1,"accepts":{}}`, ErrNoOptions, "a JSON object, not an array"},
		{"accepts null", nil, `{"x402Version":1,"accepts":null}`, ErrNoOptions, "null, not an array"},
		{"accepts empty", nil, `{"x402Version":2,"accepts":[]}`, ErrNoOptions, "accepts is empty"},
		{"nothing at all", http.Header{"Payment-Required": {"  "}}, " \n", ErrNoOptions, "empty body"},
		{"empty object body", nil, `{}`, ErrVersion, "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := ParseResponse(tc.header, []byte(tc.body))
			if err == nil {
				t.Fatalf("no error; got %+v", pr)
			}
			if pr != nil {
				t.Errorf("a PaymentRequired came back with the error")
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
			var we *WireError
			if !errors.As(err, &we) || we.Kind != tc.kind {
				t.Errorf("error %T %v is not a *WireError of kind %v", err, err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err, tc.msg)
			}
		})
	}
}

func TestParseResponseOptionErrors(t *testing.T) {
	long := strings.Repeat("9", 79)
	tests := []struct {
		name  string
		opt   string
		kind  ErrorKind
		field string
		msg   string // exact message, or substring if it starts with "~"
	}{
		{"upto scheme", option("scheme", `"upto"`), ErrUnsupportedScheme, "scheme", `option 1: scheme "upto" is not supported; only "exact" can be paid`},
		{"missing scheme", option("scheme", drop), ErrUnsupportedScheme, "scheme", `~scheme is missing`},
		{"scheme not a string", option("scheme", `1`), ErrUnsupportedScheme, "scheme", `~the JSON number 1`},
		{"permit2", option("extra", `{"name":"USDC","version":"2","assetTransferMethod":"permit2"}`), ErrUnsupportedTransfer, "extra.assetTransferMethod", `option 1: extra.assetTransferMethod "permit2" is not supported; only "eip3009" can be paid`},
		{"transfer method not a string", option("extra", `{"assetTransferMethod":3009}`), ErrUnsupportedTransfer, "extra.assetTransferMethod", `~not a string`},
		{"solana", option("network", `"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"`), ErrUnsupportedNetwork, "network", `~not an EVM network`},
		{"solana v1 name", option("network", `"solana-devnet"`), ErrUnsupportedNetwork, "network", `~not an EVM network`},
		{"unknown name", option("network", `"basee"`), ErrUnsupportedNetwork, "network", `~unknown network name`},
		{"leading zero chain id", option("network", `"eip155:08453"`), ErrUnsupportedNetwork, "network", `~leading zeros`},
		{"missing network", option("network", drop), ErrUnsupportedNetwork, "network", `~network is missing`},
		{"negative amount", option("amount", `"-5"`), ErrBadAmount, "amount", `option 1: amount "-5" is not a non-negative integer`},
		{"plus amount", option("amount", `"+5"`), ErrBadAmount, "amount", `~is not a non-negative integer`},
		{"decimal amount", option("amount", `"0.01"`), ErrBadAmount, "amount", `~is not a non-negative integer`},
		{"exponent amount", option("amount", `"1e4"`), ErrBadAmount, "amount", `~is not a non-negative integer`},
		{"hex amount", option("amount", `"0x2710"`), ErrBadAmount, "amount", `~is not a non-negative integer`},
		{"spaced amount", option("amount", `" 10000"`), ErrBadAmount, "amount", `~is not a non-negative integer`},
		{"leading zeros", option("amount", `"010000"`), ErrBadAmount, "amount", `~has leading zeros`},
		{"number amount", option("amount", `10000`), ErrBadAmount, "amount", `option 1: amount is the JSON number 10000; x402 amounts are decimal strings of atomic units`},
		{"empty amount", option("amount", `""`), ErrBadAmount, "amount", `~amount is empty`},
		{"zero amount", option("amount", `"0"`), ErrBadAmount, "amount", `~nothing to pay`},
		{"79 digits", option("amount", `"`+long+`"`), ErrBadAmount, "amount", `~79 digits`},
		{"2^256", option("amount", `"115792089237316195423570985008687907853269984665640564039457584007913129639936"`), ErrBadAmount, "amount", `~does not fit in a uint256`},
		{"missing amount", option("amount", drop), ErrBadAmount, "amount", `~amount is missing`},
		{"v1 amount key in v2", option("amount", drop, "maxAmountRequired", `"10000"`), ErrBadAmount, "amount", `~amount is missing`},
		{"conflicting amounts", option("maxAmountRequired", `"1"`), ErrBadAmount, "amount", `~both amount and maxAmountRequired`},
		{"short asset", option("asset", `"0x036CbD53842c5426634e7929541eC2318f3dCF7"`), ErrBadAddress, "asset", `~is not 0x followed by 40 hex digits`},
		{"asset without 0x", option("asset", `"036CbD53842c5426634e7929541eC2318f3dCF7e00"`), ErrBadAddress, "asset", `~is not 0x followed by 40 hex digits`},
		{"zero asset", option("asset", `"0x0000000000000000000000000000000000000000"`), ErrBadAddress, "asset", `~zero address`},
		{"bad checksum payTo", option("payTo", `"0x209693bc6afc0C5328bA36FaF03C514EF312287C"`), ErrBadAddress, "payTo", `~fails its EIP-55 checksum`},
		{"non-hex payTo", option("payTo", `"0x209693Bc6afc0C5328bA36FaF03C514EF312287G"`), ErrBadAddress, "payTo", `~40 hex digits`},
		{"zero payTo", option("payTo", `"0x0000000000000000000000000000000000000000"`), ErrBadAddress, "payTo", `~zero address`},
		{"payTo is the asset", option("payTo", `"`+strings.ToLower(usdcBaseSepolia)+`"`), ErrBadAddress, "payTo", `~the token contract itself`},
		{"payTo missing", option("payTo", drop), ErrBadAddress, "payTo", `~payTo is missing`},
		{"payTo a number", option("payTo", `0`), ErrBadAddress, "payTo", `~not a string`},
		{"timeout missing", option("maxTimeoutSeconds", drop), ErrBadTimeout, "maxTimeoutSeconds", `~missing`},
		{"timeout negative", option("maxTimeoutSeconds", `-1`), ErrBadTimeout, "maxTimeoutSeconds", `~cannot be negative`},
		{"timeout fraction", option("maxTimeoutSeconds", `60.5`), ErrBadTimeout, "maxTimeoutSeconds", `~whole number`},
		{"timeout exponent", option("maxTimeoutSeconds", `6e1`), ErrBadTimeout, "maxTimeoutSeconds", `~whole number`},
		{"timeout string", option("maxTimeoutSeconds", `"60"`), ErrBadTimeout, "maxTimeoutSeconds", `~a JSON string`},
		{"timeout too big", option("maxTimeoutSeconds", `18446744073709551616`), ErrBadTimeout, "maxTimeoutSeconds", `~64 bits`},
		{"option not an object", `"exact"`, ErrMalformed, "", `option 1: the option is a JSON string, not a JSON object`},
		{"extra not an object", option("extra", `"USDC"`), ErrMalformed, "extra", `~extra is a JSON string`},
		{"extra name not a string", option("extra", `{"name":1,"version":"2"}`), ErrMalformed, "extra.name", `~extra.name is the JSON number 1`},
		{"payment flow not a string", option("extra", `{"name":"USDC","version":"2","paymentFlow":["upfront"]}`), ErrMalformed, "extra.paymentFlow", `option 1: extra.paymentFlow is a JSON array, not a string`},
		{"payment flow empty", option("extra", `{"name":"USDC","version":"2","paymentFlow":""}`), ErrMalformed, "extra.paymentFlow", `~extra.paymentFlow is an empty string`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := ParseResponse(headerWith(v2Doc(option(), tc.opt, option("network", `"base"`))), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(pr.Options) != 3 || !pr.Options[0].Payable() || !pr.Options[2].Payable() {
				t.Fatalf("the good options around the bad one must stay payable: %v, %v", pr.Options[0].Err, pr.Options[len(pr.Options)-1].Err)
			}
			o := pr.Options[1]
			if o.Payable() || o.Err == nil {
				t.Fatalf("option payable: %s", o.Raw)
			}
			if got := len(pr.Payable()); got != 2 {
				t.Errorf("Payable() has %d options", got)
			}
			if !errors.Is(o.Err, tc.kind) {
				t.Errorf("error %q is not %v", o.Err, tc.kind)
			}
			var we *WireError
			if !errors.As(o.Err, &we) || we.Kind != tc.kind {
				t.Fatalf("error %T is not a *WireError of kind %v", o.Err, tc.kind)
			}
			wantField := "accepts[1]"
			if tc.field != "" {
				wantField += "." + tc.field
			}
			if we.Field != wantField || we.Where != "option 1" {
				t.Errorf("where %q field %q, want option 1 %q", we.Where, we.Field, wantField)
			}
			if sub, ok := strings.CutPrefix(tc.msg, "~"); ok {
				if !strings.Contains(o.Err.Error(), sub) {
					t.Errorf("message %q does not contain %q", o.Err, sub)
				}
			} else if o.Err.Error() != tc.msg {
				t.Errorf("message\n got %q\nwant %q", o.Err, tc.msg)
			}
			if string(o.Raw) != tc.opt {
				t.Errorf("Raw = %s, want %s", o.Raw, tc.opt)
			}
		})
	}
}

// TestParsePaymentFlow: extra.paymentFlow is read as sent, "" when absent,
// and bounded and cleaned so that only the exact name reads as that name.
// Judging the flow is the caller's business: every one of these parses.
func TestParsePaymentFlow(t *testing.T) {
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"absent", `{"name":"USDC","version":"2"}`, ""},
		{"null", `{"name":"USDC","version":"2","paymentFlow":null}`, ""},
		{"no extra", ``, ""},
		{"authorization", `{"name":"USDC","version":"2","paymentFlow":"authorization"}`, FlowAuthorization},
		{"upfront", `{"name":"USDC","version":"2","paymentFlow":"upfront"}`, FlowUpfront},
		{"escrow", `{"paymentFlow":"escrow","name":"USDC","version":"2"}`, FlowEscrow},
		{"unknown", `{"name":"USDC","version":"2","paymentFlow":"pay-later"}`, "pay-later"},
		{"case differs", `{"name":"USDC","version":"2","paymentFlow":"Upfront"}`, "Upfront"},
		{"control characters", `{"name":"USDC","version":"2","paymentFlow":"up\nfront\u202e"}`, "up front"},
		{"long", `{"name":"USDC","version":"2","paymentFlow":"` + strings.Repeat("u", 200) + `"}`, strings.Repeat("u", maxFlowBytes) + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := option("extra", tc.extra)
			if tc.extra == "" {
				opt = option("extra", drop)
			}
			pr, err := ParseResponse(headerWith(v2Doc(opt)), nil)
			if err != nil {
				t.Fatal(err)
			}
			o := pr.Options[0]
			if !o.Payable() {
				t.Fatalf("the flow made the option unparseable: %v", o.Err)
			}
			if o.PaymentFlow != tc.want {
				t.Errorf("PaymentFlow = %q, want %q", o.PaymentFlow, tc.want)
			}
			if string(o.Raw) != opt {
				t.Errorf("Raw = %s, want the option as sent", o.Raw)
			}
			if tc.name != tc.want && KnownPaymentFlow(o.PaymentFlow) {
				t.Errorf("%q reads as the defined flow %q", tc.extra, o.PaymentFlow)
			}
		})
	}
}

func TestUnsupportedNetworkCause(t *testing.T) {
	pr, err := ParseResponse(headerWith(v2Doc(option("network", `"solana"`))), nil)
	if err != nil {
		t.Fatal(err)
	}
	var une *UnsupportedNetworkError
	if err := pr.Options[0].Err; !errors.As(err, &une) || une.Network != "solana" {
		t.Errorf("error %v does not carry the *UnsupportedNetworkError", err)
	}
}

func TestParseResponseSources(t *testing.T) {
	v1Body := `{"x402Version":1,"error":"X-PAYMENT header is required","accepts":[` +
		option("amount", drop, "maxAmountRequired", `"5"`, "network", `"base"`, "resource", `"https://a.example/v1"`) + `]}`
	tests := []struct {
		name    string
		header  http.Header
		body    string
		source  string
		version int
		url     string
	}{
		{"v2 header", headerWith(v2Doc(option())), "{}", SourceHeader, 2, "https://api.example.com/x"},
		{"v2 header wins over a v1 body", headerWith(v2Doc(option())), v1Body, SourceHeader, 2, "https://api.example.com/x"},
		{"lower-case header name", http.Header{"payment-required": headerWith(v2Doc(option()))["Payment-Required"]}, "", SourceHeader, 2, "https://api.example.com/x"},
		{"upper-case header name", http.Header{"PAYMENT-REQUIRED": headerWith(v2Doc(option()))["Payment-Required"]}, "", SourceHeader, 2, "https://api.example.com/x"},
		{"unpadded base64", http.Header{"Payment-Required": {base64.RawStdEncoding.EncodeToString([]byte(v2Doc(option()) + " "))}}, "", SourceHeader, 2, "https://api.example.com/x"},
		{"v1 body", nil, v1Body, SourceBodyV1, 1, "https://a.example/v1"},
		{"v2 in body", http.Header{"Content-Type": {"application/json"}}, v2Doc(option()), SourceBodyV2, 2, "https://api.example.com/x"},
		{"v2 in body without resource", nil, `{"x402Version":2,"accepts":[` + option("description", `"opt"`) + `]}`, SourceBodyV2, 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := ParseResponse(tc.header, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if pr.Source != tc.source || pr.Version != tc.version || pr.ResourceURL != tc.url {
				t.Errorf("source %q version %d url %q", pr.Source, pr.Version, pr.ResourceURL)
			}
			if !pr.Options[0].Payable() {
				t.Errorf("option not payable: %v", pr.Options[0].Err)
			}
		})
	}
}

func TestParseResponseV1Specifics(t *testing.T) {
	body := `{"x402Version":1,"accepts":[` +
		option("amount", drop, "maxAmountRequired", `"5"`, "network", `"base"`) + `,` +
		option("network", `"base"`) + `,` + // v2 spelling in a v1 option
		option("maxAmountRequired", `"10000"`, "network", `"polygon"`) + // both, agreeing
		`],"resource":{"url":"ignored in v1"}}`
	pr, err := ParseResponse(nil, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Resource != nil {
		t.Errorf("v1 Resource = %s; v1 has no top-level resource to echo", pr.Resource)
	}
	if o := pr.Options[0]; !o.Payable() || o.Amount.Int64() != 5 || o.CAIP2 != "eip155:8453" || o.Network != "base" {
		t.Errorf("option 0 = %+v", o)
	}
	if o := pr.Options[1]; !errors.Is(o.Err, ErrBadAmount) || !strings.Contains(o.Err.Error(), "maxAmountRequired is missing") {
		t.Errorf("option 1 err = %v", o.Err)
	}
	if o := pr.Options[2]; !o.Payable() || o.ChainID.Int64() != 137 {
		t.Errorf("option 2 = %+v", o)
	}
}

func TestParseResponseKeepsUnknownAndEchoed(t *testing.T) {
	opt := option("extra", `{"name":"USDC","version":"2","futureField":[1,{"x":null}]}`, "newKey", `{"deep":true}`)
	doc := `{"x402Version":2,"accepts":[ ` + opt + ` ],"resource":{"url":"u","extra":1},"extensions":{"bazaar":{"info":{}}},"unknownTop":1}`
	pr, err := ParseResponse(headerWith(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(pr.Options[0].Raw) != opt {
		t.Errorf("Raw = %s", pr.Options[0].Raw)
	}
	if string(pr.Resource) != `{"url":"u","extra":1}` || string(pr.Extensions) != `{"bazaar":{"info":{}}}` {
		t.Errorf("resource %s extensions %s", pr.Resource, pr.Extensions)
	}
	if !pr.Options[0].Payable() {
		t.Error(pr.Options[0].Err)
	}
}

func TestParseResponseDisplayTextIsCleaned(t *testing.T) {
	doc := `{"x402Version":2,"error":"line1\nline2\u001b[31m\u202egnp.exe","resource":{"url":"https://x","description":"` +
		strings.Repeat("é", 2000) + `"},"accepts":[` + option() + `]}`
	pr, err := ParseResponse(headerWith(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(pr.Error, "\n\x1b\u202e") {
		t.Errorf("control characters kept: %q", pr.Error)
	}
	if len(pr.Description) > maxDisplayBytes+len("…") || !strings.HasSuffix(pr.Description, "…") {
		t.Errorf("description not bounded: %d bytes", len(pr.Description))
	}
	pr, err = ParseResponse(nil, []byte(`{"x402Version":1,"error":{"code":7},"accepts":[`+option()+`]}`))
	if err != nil || pr.Error != `{"code":7}` {
		t.Errorf("a non-string error is shown as JSON: %+v, %v", pr, err)
	}
}

func TestErrorMessagesQuoteUntrustedText(t *testing.T) {
	evil := strings.Repeat("A", 200) + "\n\x1b[2J"
	q, _ := json.Marshal(evil)
	pr, err := ParseResponse(headerWith(v2Doc(option("scheme", string(q)))), nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := pr.Options[0].Err.Error()
	if strings.ContainsAny(msg, "\n\x1b") || len(msg) > 200 || !strings.Contains(msg, `AAAA"…`) {
		t.Errorf("untrusted text not truncated and quoted: %q", msg)
	}
}

func TestErrorKindText(t *testing.T) {
	for k := ErrorKind(1); k < kindCount; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "ErrorKind(") {
			t.Errorf("kind %d has no text", k)
		}
	}
	if ErrorKind(0).String() != "ErrorKind(0)" || ErrBadAmount.Error() != "x402: bad amount" {
		t.Error("kind text")
	}
}

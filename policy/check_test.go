package policy

import (
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

func requestTo(url string, amount int64) Request {
	r := request(amount)
	r.URL, r.Host = url, ""
	return r
}

// denies checks that the verdict is a denial whose reasons include want.
func denies(t *testing.T, name string, v Verdict, want string) {
	t.Helper()
	if v.Allowed {
		t.Errorf("%s: allowed, want a denial saying %q", name, want)
		return
	}
	if !slices.ContainsFunc(v.Reasons, func(r string) bool { return strings.Contains(r, want) }) {
		t.Errorf("%s: reasons %q do not say %q", name, v.Reasons, want)
	}
}

func allows(t *testing.T, name string, v Verdict) {
	t.Helper()
	if !v.Allowed {
		t.Errorf("%s: denied: %q", name, v.Reasons)
	}
}

func TestCheckHosts(t *testing.T) {
	p := Default()
	p.Hosts = HostRules{
		Allow: []HostPattern{MustHostPattern("api.example.com"), MustHostPattern("*.example.org")},
		Deny:  []HostPattern{MustHostPattern("ads.example.org")},
	}
	for _, u := range []string{"https://api.example.com/x", "https://API.EXAMPLE.COM.:443/x", "https://a.b.example.org/"} {
		allows(t, u, p.Check(requestTo(u, 1000)))
	}
	for u, want := range map[string]string{
		"https://api.evil.net/x":                "host api.evil.net is not in the operator's allowed hosts (policy: hosts.allow)",
		"https://example.org/":                  "host example.org is not in the operator's allowed hosts (policy: hosts.allow)",
		"https://api.example.com.evil.net/":     "not in the operator's allowed hosts",
		"https://api.example.com@evil.net/":     "host evil.net is not in the operator's allowed hosts",
		"https://ads.example.org/":              "host ads.example.org is in the operator's denied hosts as ads.example.org (policy: hosts.deny)",
		"https://ADS.example.org./":             "(policy: hosts.deny)",
		"https://0x7f.1/":                       "looks like an IP address",
		"https://[fe80::1%25en0]/":              "IPv6 zone",
		"https://api.example.com:99999/":        "port",
		"ftp://api.example.com/":                `the URL scheme "ftp" is not http or https`,
		"api.example.com/x":                     "not an absolute URL",
		"":                                      "the URL that asked for payment is missing",
		"https://user:secret@api.example.com/x": "carries a user name or password",
	} {
		v := p.Check(requestTo(u, 1000))
		denies(t, u, v, want)
		for _, r := range v.Reasons {
			if strings.Contains(r, "secret") {
				t.Errorf("a reason repeats the URL's password: %q", r)
			}
		}
	}
	// Request.Host, when given, must be the URL's host.
	r := requestTo("https://api.example.com/x", 1000)
	r.Host = "API.example.com:443"
	allows(t, "same host in another form", p.Check(r))
	r.Host = "other.example.org"
	denies(t, "other Host", p.Check(r), "is not the URL's host api.example.com")
	r = requestTo("http://[::1]:8080/x", 1000)
	r.Host = "::1" // what url.URL.Hostname gives
	allows(t, "bare IPv6 Host", Default().Check(r))
}

func TestCheckPlainHTTP(t *testing.T) {
	loopback := []string{"http://127.0.0.1:4021/x", "http://127.8.9.10/", "http://[::1]:80/", "http://[::ffff:127.0.0.1]/", "http://localhost:8080/", "http://LOCALHOST/"}
	remote := []string{"http://api.example.com/x", "http://10.0.0.1/", "http://localhost./", "http://localhoſt/", "http://127.0.0.1.nip.io/", "http://[::2]/"}

	p := Default()
	for _, u := range loopback {
		allows(t, "loopback "+u, p.Check(requestTo(u, 1000)))
	}
	for _, u := range remote {
		denies(t, "remote "+u, p.Check(requestTo(u, 1000)), "payments need https except to this machine (policy: require_https)")
	}
	allows(t, "https", p.Check(requestTo("https://api.example.com/", 1000)))

	p.HTTP = HTTPNever
	for _, u := range append(loopback, remote...) {
		denies(t, "never "+u, p.Check(requestTo(u, 1000)), "(policy: allow_http_loopback)")
	}
	p.HTTP = HTTPAnywhere
	for _, u := range append(loopback, remote...) {
		allows(t, "anywhere "+u, p.Check(requestTo(u, 1000)))
	}
	// The zero Policy's rule is the safe one.
	if (Policy{}).HTTP != HTTPLoopbackOnly {
		t.Error("the zero PlainHTTP is not loopback-only")
	}
}

func TestCheckTokensAndNetworks(t *testing.T) {
	sepolia, _ := tokens.Builtin().Lookup("eip155:84532", common.HexToAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e"))
	p := Default()
	p.Tokens = []tokens.Token{sepolia}
	denies(t, "token", p.Check(request(1000)), "is not in the operator's allowed tokens (policy: tokens)")
	p.Tokens = []tokens.Token{sepolia, usdc}
	allows(t, "token listed", p.Check(request(1000)))

	p = Default()
	p.Networks = []string{"eip155:84532"}
	denies(t, "network", p.Check(request(1000)), "network eip155:8453 is not in the operator's allowed networks: eip155:84532 (policy: networks)")
}

func TestCheckTokenLimit(t *testing.T) {
	p := Default() // 0.10 USD
	p.TokenLimits = []TokenLimit{{Token: usdc, MaxPerPayment: big.NewInt(30000)}}
	v := p.Check(request(30000))
	allows(t, "at the token limit", v)
	if v.LimitAtomic.Int64() != 30000 {
		t.Errorf("LimitAtomic = %s, want the stricter token limit 30000", v.LimitAtomic)
	}
	denies(t, "over the token limit", p.Check(request(30001)),
		"price 0.030001 USDC is above the operator's per-payment cap of 0.03 USDC for this token (policy: token_limits)")

	// A looser token limit does not raise the USD cap: the strictest wins.
	p.TokenLimits[0].MaxPerPayment = big.NewInt(5_000_000)
	v = p.Check(request(200000))
	denies(t, "USD cap stricter", v, "operator's per-payment cap of 0.1 USD (policy: max_per_payment)")
	if v.LimitAtomic.Int64() != 100000 {
		t.Errorf("LimitAtomic = %s, want the USD cap 100000", v.LimitAtomic)
	}

	// A limit converted with other decimals is not trusted.
	other := usdc
	other.Decimals = 18
	r := request(1)
	r.Token = other
	denies(t, "decimals changed", p.Check(r), "reload the policy")

	// Limits of other tokens do not apply.
	p.TokenLimits = []TokenLimit{{Token: tokens.Token{Network: "eip155:1", Address: usdc.Address, Decimals: 6}, MaxPerPayment: big.NewInt(1)}}
	allows(t, "other token's limit", p.Check(request(1000)))
}

func TestCheckPayees(t *testing.T) {
	other := common.HexToAddress("0x1111111111111111111111111111111111111111")
	p := Default()
	// Addresses compare as addresses: case in the file does not matter.
	p.Payees.Allow = []common.Address{common.HexToAddress(strings.ToLower(payee.Hex()))}
	allows(t, "allowed payee", p.Check(request(1000)))
	r := request(1000)
	r.PayTo = other
	denies(t, "not allowed", p.Check(r), "payee 0x1111111111111111111111111111111111111111 is not in the operator's allowed payees (policy: payees.allow)")

	p.Payees.Deny = []common.Address{payee}
	v := p.Check(request(1000))
	denies(t, "deny wins over allow", v, "is in the operator's denied payees (policy: payees.deny)")
	if len(v.Reasons) != 1 {
		t.Errorf("reasons = %q, want only the deny", v.Reasons)
	}
}

// TestCheckEveryRuleAtOnce: a request that breaks every rule gets one
// reason per rule, each naming the key to change.
func TestCheckEveryRuleAtOnce(t *testing.T) {
	sepolia, _ := tokens.Builtin().Lookup("eip155:84532", common.HexToAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e"))
	p := Default()
	p.Networks = []string{"eip155:84532"}
	p.Tokens = []tokens.Token{sepolia}
	p.TokenLimits = []TokenLimit{{Token: usdc, MaxPerPayment: big.NewInt(1)}}
	p.Hosts.Allow = []HostPattern{MustHostPattern("api.example.com")}
	p.Payees.Deny = []common.Address{payee}
	r := requestTo("http://evil.example.net/", 200000)
	r.PaymentFlow = x402.FlowUpfront
	v := p.Check(r)
	for _, key := range []string{"require_https", "hosts.allow", "payment_flows", "networks", "tokens", "max_per_payment", "token_limits", "payees.deny"} {
		denies(t, key, v, "(policy: "+key+")")
	}
	if len(v.Reasons) != 8 {
		t.Errorf("%d reasons, want 8: %q", len(v.Reasons), v.Reasons)
	}
}

// TestMaxPriceAboveCapChangesNothing: the agent's max_price can only lower
// the cap; above it, the verdict is exactly the one without it.
func TestMaxPriceAboveCapChangesNothing(t *testing.T) {
	p := Default()
	p.TokenLimits = []TokenLimit{{Token: usdc, MaxPerPayment: big.NewInt(80000)}}
	for _, amount := range []int64{1000, 80000, 90000, 100001} {
		plain := p.Check(request(amount))
		r := request(amount)
		r.MaxPrice = MustUSD("1000")
		high := p.Check(r)
		if plain.Allowed != high.Allowed || !slices.Equal(plain.Reasons, high.Reasons) || plain.Limit.Cmp(high.Limit) != 0 ||
			plain.LimitAtomic.Cmp(high.LimitAtomic) != 0 {
			t.Errorf("amount %d: max_price 1000 changed the verdict\n without: %+v\n    with: %+v", amount, plain, high)
		}
	}
}

// TestCheckPaymentFlow: only the standard flow is allowed unless
// payment_flows lists another; a flow x402 does not define is refused
// whatever the policy lists; and Approve, the gate before the signer,
// applies the same rule.
func TestCheckPaymentFlow(t *testing.T) {
	withFlow := func(flow string) Request {
		r := request(1000)
		r.PaymentFlow = flow
		return r
	}
	p := Default()
	allows(t, "absent", p.Check(withFlow("")))
	allows(t, "authorization", p.Check(withFlow(x402.FlowAuthorization)))
	denies(t, "upfront", p.Check(withFlow(x402.FlowUpfront)),
		`payment flow "upfront" means the server settles before it does the work, so a request that fails is paid all the same; the operator's policy does not allow it (policy: payment_flows)`)
	denies(t, "escrow", p.Check(withFlow(x402.FlowEscrow)),
		`payment flow "escrow" means the server settles before it does the work (and again after it), so a request that fails is paid all the same; the operator's policy does not allow it (policy: payment_flows)`)
	denies(t, "unknown", p.Check(withFlow("pay-later")), `payment flow "pay-later" is not one x402 defines`)
	denies(t, "case differs", p.Check(withFlow("Upfront")), `payment flow "Upfront" is not one x402 defines`)

	_, err := approve(t, p, withFlow(x402.FlowUpfront), auth(1000, time.Minute))
	var d *DeniedError
	if !errors.As(err, &d) || !strings.Contains(err.Error(), "(policy: payment_flows)") {
		t.Errorf("Approve of an upfront payment the policy does not allow: err = %v", err)
	}

	p.PaymentFlows = []string{x402.FlowUpfront}
	allows(t, "upfront allowed", p.Check(withFlow(x402.FlowUpfront)))
	allows(t, "standard still allowed", p.Check(withFlow("")))
	denies(t, "escrow not listed", p.Check(withFlow(x402.FlowEscrow)), "(policy: payment_flows)")
	denies(t, "unknown whatever is listed", p.Check(withFlow("pay-later")), "is not one x402 defines")
	if _, err := approve(t, p, withFlow(x402.FlowUpfront), auth(1000, time.Minute)); err != nil {
		t.Errorf("Approve of an allowed upfront payment: %v", err)
	}
}

func TestNeedsApproval(t *testing.T) {
	p := Default()
	p.ApprovalAbove = MustUSD("0.05")
	v := p.Check(request(50000))
	if !v.Allowed || v.NeedsApproval {
		t.Errorf("at the threshold: %+v", v)
	}
	v = p.Check(request(50001))
	if !v.Allowed || !v.NeedsApproval {
		t.Fatalf("over the threshold: %+v", v)
	}
	if want := "price 0.050001 USDC is above 0.05 USD, over which the operator wants to be asked first (policy: approval_above); ask the human to confirm this payment"; v.ApprovalReason != want {
		t.Errorf("ApprovalReason = %q\nwant             %q", v.ApprovalReason, want)
	}
	if v := Default().Check(request(100000)); v.NeedsApproval {
		t.Error("the default policy asks for approval")
	}

	// Approve refuses until the human has confirmed.
	_, err := approve(t, p, request(50001), auth(50001, time.Minute))
	var d *DeniedError
	if !errors.As(err, &d) || !strings.Contains(err.Error(), "approval_above") {
		t.Errorf("unconfirmed: err = %v", err)
	}
	r := request(50001)
	r.Confirmed = true
	if _, err := approve(t, p, r, auth(50001, time.Minute)); err != nil {
		t.Errorf("confirmed: %v", err)
	}
	// Confirmation does not lift any other rule.
	r = request(200000)
	r.Confirmed = true
	if _, err := approve(t, p, r, auth(200000, time.Minute)); !errors.As(err, &d) {
		t.Errorf("confirmed but over the cap: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Policy){
		"no cap":              func(p *Policy) { p.MaxPerPayment = USD{} },
		"short window":        func(p *Policy) { p.MaxWindow = time.Second },
		"long window":         func(p *Policy) { p.MaxWindow = 48 * time.Hour },
		"bad network":         func(p *Policy) { p.Networks = []string{"base"} },
		"negative rate":       func(p *Policy) { p.MaxPaymentsPerMinute = -1 },
		"bad http rule":       func(p *Policy) { p.HTTP = 9 },
		"nil token limit":     func(p *Policy) { p.TokenLimits = []TokenLimit{{Token: usdc}} },
		"zero host pattern":   func(p *Policy) { p.Hosts.Deny = []HostPattern{{}} },
		"raw host budget":     func(p *Policy) { p.HostBudgets = map[string]Periods{"API.example.com": {Day: MustUSD("1")}} },
		"pattern as budget":   func(p *Policy) { p.HostBudgets = map[string]Periods{"*.example.com": {Day: MustUSD("1")}} },
		"bracketed v6 budget": func(p *Policy) { p.HostBudgets = map[string]Periods{"[::1]": {Day: MustUSD("1")}} },
		"unknown flow":        func(p *Policy) { p.PaymentFlows = []string{"pay-later"} },
	} {
		p := Default()
		mutate(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, p)
		}
	}
}

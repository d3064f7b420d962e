package policy

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

var (
	usdc = tokens.Token{Network: "eip155:8453", ChainID: big.NewInt(8453), Address: common.HexToAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
		Symbol: "USDC", Name: "USD Coin", Version: "2", Decimals: 6, Currency: "USD"}
	payee = common.HexToAddress("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")
	payer = common.HexToAddress("0x857b06519E91e3A54538791bDbb0E22373e36b66")
	now   = time.Unix(1_800_000_000, 0)
)

func request(amount int64) Request {
	return Request{URL: "https://api.example.com/x", Host: "api.example.com", Token: usdc, PayTo: payee, Amount: big.NewInt(amount)}
}

func auth(amount int64, window time.Duration) x402.Authorization {
	return x402.Authorization{From: payer, To: payee, Value: big.NewInt(amount), ValidAfter: big.NewInt(now.Add(-10 * time.Minute).Unix()),
		ValidBefore: big.NewInt(now.Add(window).Unix()), Nonce: [32]byte{1}}
}

func TestParseUSD(t *testing.T) {
	for in, want := range map[string]string{"0.10": "0.1", "$1": "1", "0": "0", "12.000000000000000001": "12.000000000000000001"} {
		u, err := ParseUSD(in)
		if err != nil || u.String() != want {
			t.Errorf("ParseUSD(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1e2", "0.1234567890123456789", "abc", "1.", "NaN", "0x1"} {
		if u, err := ParseUSD(in); err == nil {
			t.Errorf("ParseUSD(%q) = %v, want error", in, u)
		}
	}
}

func TestUSDAtomicIsExactFloor(t *testing.T) {
	for _, tc := range []struct {
		usd  string
		dec  uint8
		want string
	}{
		{"0.10", 6, "100000"},
		{"0.1234567", 6, "123456"}, // floor: 123456.7 atomic units allow at most 123456
		{"1", 18, "1000000000000000000"},
		{"0.5", 0, "0"},
	} {
		if got := MustUSD(tc.usd).Atomic(tc.dec).String(); got != tc.want {
			t.Errorf("%s USD with %d decimals = %s, want %s", tc.usd, tc.dec, got, tc.want)
		}
	}
}

func TestCheckCapIsInclusiveAndExact(t *testing.T) {
	p := Default() // 0.10 USD
	if v := p.Check(request(100000)); !v.Allowed {
		t.Fatalf("exactly the cap denied: %v", v.Reasons)
	}
	v := p.Check(request(100001))
	if v.Allowed {
		t.Fatal("one atomic unit over the cap allowed")
	}
	if !strings.Contains(v.Reasons[0], "0.100001 USDC is above the operator's per-payment cap of 0.1 USD") {
		t.Errorf("reason = %q", v.Reasons[0])
	}
	// The registry's decimals drive the comparison: the same number of
	// atomic units of an 18-decimal token is a tiny amount.
	dai := usdc
	dai.Decimals = 18
	r := request(100001)
	r.Token = dai
	if v := p.Check(r); !v.Allowed {
		t.Errorf("18-decimal token denied: %v", v.Reasons)
	}
}

func TestMaxPriceOnlyLowers(t *testing.T) {
	p := Default()
	r := request(50000) // 0.05
	r.MaxPrice = MustUSD("0.01")
	v := p.Check(r)
	if v.Allowed || !strings.Contains(v.Reasons[0], "max_price of 0.01 USD") {
		t.Fatalf("max_price below the price: %+v", v)
	}
	r = request(200000) // 0.20, over the 0.10 cap
	r.MaxPrice = MustUSD("1000")
	v = p.Check(r)
	if v.Allowed {
		t.Fatal("an agent's max_price above the operator cap raised it")
	}
	if v.Limit.String() != "0.1" || !strings.Contains(v.Reasons[0], "operator's per-payment cap") {
		t.Errorf("verdict = %+v", v)
	}
}

func TestCheckRefusals(t *testing.T) {
	p := Default()
	p.Networks = []string{"eip155:84532"}
	if v := p.Check(request(1)); v.Allowed || !strings.Contains(v.Reasons[0], "not in the operator's allowed networks") {
		t.Errorf("disallowed network: %+v", v)
	}
	p = Default()
	eur := usdc
	eur.Currency = "EUR"
	r := request(1)
	r.Token = eur
	if v := p.Check(r); v.Allowed {
		t.Error("non-USD token allowed under a USD cap")
	}
	r = request(1)
	r.PayTo = common.Address{}
	if v := p.Check(r); v.Allowed {
		t.Error("zero payee allowed")
	}
	r = request(1)
	r.PayTo = usdc.Address
	if v := p.Check(r); v.Allowed {
		t.Error("token contract as payee allowed")
	}
	if v := p.Check(request(0)); v.Allowed {
		t.Error("zero amount allowed")
	}
	if v := (Policy{MaxWindow: time.Minute}).Check(request(1)); v.Allowed {
		t.Error("a policy without a cap allowed a payment")
	}
}

func TestApproveChecksTheAuthorization(t *testing.T) {
	p := Default()
	if _, err := approve(t, p, request(1000), auth(1000, time.Minute)); err != nil {
		t.Fatalf("valid payment: %v", err)
	}
	cases := map[string]func(*x402.Authorization){
		"other payee":     func(a *x402.Authorization) { a.To = common.HexToAddress("0x01") },
		"other value":     func(a *x402.Authorization) { a.Value = big.NewInt(1001) },
		"zero nonce":      func(a *x402.Authorization) { a.Nonce = [32]byte{} },
		"validAfter now":  func(a *x402.Authorization) { a.ValidAfter = big.NewInt(now.Unix()) },
		"expired":         func(a *x402.Authorization) { a.ValidBefore = big.NewInt(now.Unix()) },
		"window too long": func(a *x402.Authorization) { a.ValidBefore = big.NewInt(now.Add(p.MaxWindow + time.Second).Unix()) },
		"missing numbers": func(a *x402.Authorization) { a.ValidAfter = nil },
	}
	for name, mutate := range cases {
		a := auth(1000, time.Minute)
		mutate(&a)
		_, err := approve(t, p, request(1000), a)
		var d *DeniedError
		if !errors.As(err, &d) {
			t.Errorf("%s: err = %v, want *DeniedError", name, err)
		}
	}
	var d *DeniedError
	if _, err := approve(t, p, request(200000), auth(200000, time.Minute)); !errors.As(err, &d) {
		t.Errorf("over the cap: err = %v", err)
	}
}

func TestWindow(t *testing.T) {
	p := Default()
	if w := p.Window(60); w != time.Minute {
		t.Errorf("Window(60) = %v", w)
	}
	if w := p.Window(86400); w != p.MaxWindow {
		t.Errorf("Window(86400) = %v, want the cap %v", w, p.MaxWindow)
	}
}

// TestBudgetNames checks the one place budgets are named: the words in
// messages and the policy-file key behind each.
func TestBudgetNames(t *testing.T) {
	for _, c := range []struct {
		b         Budget
		name, key string
	}{
		{Budget{Period: "hour", Window: time.Hour}, "hourly budget", "budget.hour"},
		{Budget{Period: "day", Window: 24 * time.Hour, Host: "api.example.com"}, "daily budget for api.example.com", `hosts.budget."api.example.com".day`},
		{Budget{Period: "month", Window: 30 * 24 * time.Hour}, "monthly (30 days) budget", "budget.month"},
		{Budget{Period: "total"}, "lifetime budget", "budget.total"},
	} {
		if got := c.b.Name(); got != c.name {
			t.Errorf("%+v: Name %q, want %q", c.b, got, c.name)
		}
		if got := BudgetKey(c.b.Window, c.b.Host); got != c.key {
			t.Errorf("%+v: key %q, want %q", c.b, got, c.key)
		}
	}
	for _, b := range Default().Budgets() {
		if b.Period != periodOf(b.Window).name {
			t.Errorf("budget %+v: its period and window disagree", b)
		}
	}
}

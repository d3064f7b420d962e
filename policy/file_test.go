package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/x402-mcp/x402-mcp/tokens"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with a golden file, or rewrites it under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./policy -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestFileErrors holds the exact text an operator sees for each mistake in
// a policy file: testdata/errors/NAME.toml fails with NAME.golden.
func TestFileErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no error cases: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".toml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse("policy.toml", data, tokens.Builtin())
			if err == nil {
				t.Fatal("parsed without error")
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %T %v, want *FileError", err, err)
			}
			if fe.Line == 0 {
				t.Errorf("no line in %q", err)
			}
			golden(t, strings.TrimSuffix(f, ".toml")+".golden", err.Error()+"\n")
		})
	}
}

func TestExampleFile(t *testing.T) {
	p, err := Load("testdata/example.toml", tokens.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	base := tokens.Builtin().All()
	var usdcBase tokens.Token
	for _, tok := range base {
		if tok.Network == "eip155:8453" {
			usdcBase = tok
		}
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"max_per_payment", p.MaxPerPayment.String() == "0.1"},
		{"approval_above", p.ApprovalAbove.String() == "0.05"},
		{"rate", p.MaxPaymentsPerMinute == 30},
		{"window", p.MaxWindow == 300*time.Second},
		{"http", p.HTTP == HTTPLoopbackOnly},
		{"networks", len(p.Networks) == 1 && p.Networks[0] == "eip155:8453"},
		{"tokens", len(p.Tokens) == 1 && sameToken(p.Tokens[0], usdcBase)},
		{"budget", p.Budget.Hour.String() == "1" && p.Budget.Day.String() == "5" && p.Budget.Week.String() == "20" &&
			p.Budget.Month.String() == "50" && p.Budget.Total.String() == "200"},
		{"host budget", len(p.HostBudgets) == 1 && p.HostBudgets["api.example.com"].Day.String() == "1"},
		{"hosts", len(p.Hosts.Allow) == 2 && p.Hosts.Allow[1].String() == "*.example.org" && len(p.Hosts.Deny) == 1},
		{"payees", len(p.Payees.Allow) == 1 && p.Payees.Allow[0] == payee && len(p.Payees.Deny) == 0},
		{"token limit", len(p.TokenLimits) == 1 && p.TokenLimits[0].MaxPerPayment.Int64() == 500000},
		{"payment flows", len(p.PaymentFlows) == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s not read as written: %+v", c.name, p)
		}
	}
	golden(t, "testdata/describe.golden", p.Describe())
}

// TestDescribePaymentFlows: policy check says which flows beyond the
// standard one a file allows, and what each means for the payer.
func TestDescribePaymentFlows(t *testing.T) {
	p, err := Parse("p.toml", []byte("payment_flows = [\"upfront\", \"escrow\"]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Describe()
	for _, want := range []string{
		"Payment flow upfront allowed: it means the server settles before it does the work, so a request that fails is paid all the same (policy file)\n",
		"Payment flow escrow allowed: it means the server settles before it does the work (and again after it)",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe() lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "only the standard one") {
		t.Errorf("Describe() says only the standard flow is allowed:\n%s", d)
	}
}

func TestDescribeDefault(t *testing.T) {
	golden(t, "testdata/describe_default.golden", Default().Describe())
}

func TestBudgets(t *testing.T) {
	p, err := Load("testdata/example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range p.Budgets() {
		got = append(got, b.Host+"/"+b.Period+"/"+b.Window.String()+"/"+b.Limit.String())
	}
	want := "/hour/1h0m0s/1 /day/24h0m0s/5 /week/168h0m0s/20 /month/720h0m0s/50 /total/0s/200 api.example.com/day/24h0m0s/1"
	if strings.Join(got, " ") != want {
		t.Errorf("Budgets() = %s\nwant        %s", strings.Join(got, " "), want)
	}
	d := Default().Budgets()
	if len(d) != 1 || d[0].Period != "day" || d[0].Limit.String() != "1" || d[0].Host != "" {
		t.Errorf("default budgets = %+v", d)
	}
}

// TestOmittedKeys pins what a file that leaves keys out means: every rule
// with a default keeps it (the same policy as no file at all), every rule
// without one is off.
func TestOmittedKeys(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":              "# nothing\n",
		"host allow list":    "[hosts]\nallow = [\"api.example.com\"]\n",
		"other budget":       "[budget]\nweek = \"3.00\"\n",
		"empty budget table": "[budget]\n",
		"other rules":        "approval_above = \"0.05\"\nnetworks = [\"eip155:8453\"]\n[payees]\ndeny = []\n[hosts.budget.\"api.example.com\"]\nday = \"0.50\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := Parse("p.toml", []byte(doc), nil)
			if err != nil {
				t.Fatal(err)
			}
			d := Default()
			if p.MaxPerPayment.Cmp(d.MaxPerPayment) != 0 || p.MaxWindow != d.MaxWindow || p.HTTP != d.HTTP ||
				p.MaxPaymentsPerMinute != DefaultMaxPaymentsPerMinute || !p.Budget.Day.IsSet() || p.Budget.Day.Cmp(MustUSD(DefaultDailyBudget)) != 0 ||
				len(p.PaymentFlows) != 0 {
				t.Errorf("a default was lost: %+v", p)
			}
			if p.Budget.Hour.IsSet() || p.Budget.Month.IsSet() || p.Budget.Total.IsSet() {
				t.Errorf("a budget without a default is on: %+v", p.Budget)
			}
			// Every line of the default policy is still there, marked as the
			// default, unless the file wrote that rule.
			desc := p.Describe()
			for _, line := range strings.Split(strings.TrimSpace(d.Describe()), "\n") {
				if !strings.Contains(desc, line) && !strings.HasPrefix(line, "Hosts:") && !strings.HasPrefix(line, "Networks:") &&
					!strings.HasPrefix(line, "Asking") && !strings.HasPrefix(line, "Payees:") {
					t.Errorf("Describe() lacks the default %q:\n%s", line, desc)
				}
			}
		})
	}
	p, err := Parse("empty.toml", []byte("# nothing\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.ApprovalAbove.IsSet() || len(p.Hosts.Allow) != 0 || len(p.HostBudgets) != 0 || len(p.Networks) != 0 ||
		len(p.Tokens) != 0 || len(p.TokenLimits) != 0 || len(p.Payees.Allow) != 0 {
		t.Errorf("an omitted rule without a default is on: %+v", p)
	}
	if got, want := p.Describe(), Default().Describe(); got != want {
		t.Errorf("an empty file describes otherwise than no file:\n%s\nwant\n%s", got, want)
	}
}

// TestNone: a limit is loosened only by writing it; "none" turns off the
// daily budget, the loop breaker, any other period and the approval
// threshold, and Describe says the file turned it off.
func TestNone(t *testing.T) {
	doc := "max_payments_per_minute = \"none\"\napproval_above = \"none\"\n[budget]\nday = \"none\"\nweek = \"none\"\nmonth = \"20\"\n"
	p, err := Parse("p.toml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxPaymentsPerMinute != 0 || p.ApprovalAbove.IsSet() || p.Budget.Day.IsSet() || p.Budget.Week.IsSet() || p.Budget.Month.String() != "20" {
		t.Errorf("policy = %+v", p)
	}
	if b := p.Budgets(); len(b) != 1 || b[0].Period != "month" {
		t.Errorf("budgets = %+v", b)
	}
	golden(t, "testdata/describe_none.golden", p.Describe())

	// The daily budget raised rather than turned off; the rate lowered.
	p, err = Parse("p.toml", []byte("max_payments_per_minute = 5\n[budget]\nday = \"3\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxPaymentsPerMinute != 5 || p.Budget.Day.String() != "3" {
		t.Errorf("policy = %+v", p)
	}
	if d := p.Describe(); !strings.Contains(d, "Spending: at most 3.00 USD in any 24 hours (policy file)\n") ||
		!strings.Contains(d, "Rate: at most 5 payments a minute, all hosts together (policy file)\n") {
		t.Errorf("Describe():\n%s", d)
	}

	// What cannot be turned off, and spellings that are not "none".
	for doc, want := range map[string]string{
		"max_per_payment = \"none\"\n":                   `p.toml:1: max_per_payment: max_per_payment cannot be "none": every payment needs a cap`,
		"max_payments_per_minute = \"None\"\n":           `p.toml:1: max_payments_per_minute: expected a whole number or "none", found another string (value not shown)`,
		"max_payments_per_minute = 0\n":                  `hint: write max_payments_per_minute = "none" for no limit`,
		"[budget]\nday = \"NONE\"\n":                     `p.toml:2: budget.day: the USD amount is not a decimal number like "0.10" (value not shown)`,
		"[budget]\nday = \"\"\n":                         `or "none" for no limit`,
		"[hosts.budget.\"a.example\"]\nday = \"none\"\n": `hosts.budget."a.example": sets no budget`,
		"max_authorization_seconds = \"none\"\n":         "max_authorization_seconds: expected a whole number, found a string",
	} {
		_, err := Parse("p.toml", []byte(doc), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", doc, err, want)
		}
	}
}

func TestFileVariants(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		check     func(Policy) bool
	}{
		{"inline tables and dotted keys", "budget = { day = \"2\" }\nhosts.allow = [\"A.example.com\"]\n",
			func(p Policy) bool {
				return p.Budget.Day.String() == "2" && p.Hosts.Allow[0].String() == "a.example.com"
			}},
		{"http never", "allow_http_loopback = false\n", func(p Policy) bool { return p.HTTP == HTTPNever }},
		{"http anywhere", "require_https = false\n", func(p Policy) bool { return p.HTTP == HTTPAnywhere }},
		{"zero cap is a cap", "max_per_payment = \"0\"\n", func(p Policy) bool { return p.MaxPerPayment.IsSet() && p.MaxPerPayment.String() == "0" }},
		{"lower-case address", "[payees]\nallow = [\"0x209693bc6afc0c5328ba36faf03c514ef312287c\"]\n",
			func(p Policy) bool { return p.Payees.Allow[0] == payee }},
		{"unicode host budget key", "[hosts.budget.\"Bücher.example\"]\nday = \"1\"\n",
			func(p Policy) bool { _, ok := p.HostBudgets["xn--bcher-kva.example"]; return ok }},
		{"ipv6 host", "[hosts]\nallow = [\"[::1]\", \"::2\"]\n",
			func(p Policy) bool { return p.Hosts.Allow[0].String() == "::1" && p.Hosts.Allow[1].String() == "::2" }},
		{"window bounds", "max_authorization_seconds = 86400\n", func(p Policy) bool { return p.MaxWindow == 24*time.Hour }},
		{"payment flows", "payment_flows = [\"upfront\", \"authorization\", \"escrow\", \"upfront\"]\n",
			func(p Policy) bool { return slices.Equal(p.PaymentFlows, []string{"upfront", "escrow"}) }},
		{"payment flows empty", "payment_flows = []\n", func(p Policy) bool { return len(p.PaymentFlows) == 0 }},
		{"payment flows standard only", "payment_flows = [\"authorization\"]\n", func(p Policy) bool { return len(p.PaymentFlows) == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("p.toml", []byte(tc.doc), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(p) {
				t.Errorf("policy = %+v", p)
			}
		})
	}
}

func TestLoadRefusesHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(path, []byte(strings.Repeat("#\n", maxFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml"), nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestTokenDecimalsFromRegistry: a token limit is converted with the
// decimals of the registry given to Parse, not assumed to be 6.
func TestTokenDecimalsFromRegistry(t *testing.T) {
	reg := tokens.Builtin()
	dai := tokens.Token{Network: "eip155:8453", Address: common.HexToAddress("0x50c5725949A6F0c72E6C4a641F24049A917DB0Cb"),
		Symbol: "DAI", Name: "Dai", Version: "1", Decimals: 18, Currency: "USD"}
	if err := reg.Add(dai); err != nil {
		t.Fatal(err)
	}
	doc := "[token_limits.\"eip155:8453/erc20:0x50c5725949A6F0c72E6C4a641F24049A917DB0Cb\"]\nmax_per_payment = \"0.0000000001\"\n"
	p, err := Parse("p.toml", []byte(doc), reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.TokenLimits[0].MaxPerPayment.String(); got != "100000000" {
		t.Errorf("limit = %s atomic units, want 1e8", got)
	}
	if _, err := Parse("p.toml", []byte(doc), tokens.Builtin()); err == nil {
		t.Error("a token missing from the registry was accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/example.toml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	files, _ := filepath.Glob("testdata/errors/*.toml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	reg := tokens.Builtin()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8<<10 {
			return
		}
		p, err := Parse("f.toml", data, reg)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %T %v, want *FileError", err, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse returned a policy Validate refuses: %v", err)
		}
		_ = p.Describe()
	})
}

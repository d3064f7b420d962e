package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
)

const (
	tPayTo = "0x2222222222222222222222222222222222222222"
	tAsset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
	tTx    = "0x" + "ab12" + "00000000000000000000000000000000000000000000000000000000000c"
)

// fixture is a console on a real ledger file, served on 127.0.0.1.
type fixture struct {
	led *ledger.Ledger
	srv *Server
	ts  *httptest.Server
	now time.Time
	mu  sync.Mutex
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	led, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	f := &fixture{led: led, now: time.Now()}
	pol := policy.Default()
	f.srv = New(Options{Ledger: led, Policy: pol, Token: strings.Repeat("t", 40), Now: f.clock,
		Explorers: map[string]string{"eip155:8453": "https://basescan.org/tx/"}})
	f.ts = httptest.NewServer(f.srv)
	t.Cleanup(func() { f.srv.Close(); f.ts.Close() })
	return f
}

// client is a browser without a session; it does not follow redirects,
// so each answer is seen as sent.
func (f *fixture) client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login logs c in with a fresh one-time link and returns the page's CSRF
// token.
func (f *fixture) login(t *testing.T, c *http.Client) string {
	t.Helper()
	resp := get(t, c, f.srv.LoginURL(f.ts.URL))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(body(t, get(t, c, f.ts.URL+"/")))
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// post sends a form the way a browser on the console's page does, with
// its Origin, and changes header as given ("" deletes it).
func (f *fixture) post(t *testing.T, c *http.Client, path string, form url.Values, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.ts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.ts.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func askApproval(t *testing.T, led *ledger.Ledger, terms string) ledger.Approval {
	t.Helper()
	a, err := led.RequestApproval(context.Background(), ledger.Approval{
		Binding: sha256.Sum256([]byte(terms)), RequestKey: sha256.Sum256([]byte("req " + terms)),
		Method: "GET", URL: "https://api.example.com/v1/forecast?city=Lisbon", Host: "api.example.com",
		Network: "eip155:8453", Asset: common.HexToAddress(tAsset), Token: "USDC", Decimals: 6,
		Amount: big.NewInt(250_000), USDNano: 250_000_000, PayTo: common.HexToAddress(tPayTo),
		Requester: "claude-ai (pid 4242)",
	}, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func stateOf(t *testing.T, led *ledger.Ledger, id string) ledger.ApprovalState {
	t.Helper()
	a, err := led.ApprovalByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.State
}

// pay records a settled payment, as a server would.
func settle(t *testing.T, led *ledger.Ledger, host, token string, atomic int64, nonce byte) ledger.Record {
	t.Helper()
	r, err := led.Reserve(context.Background(), ledger.Record{
		URL: "https://" + host + "/v1/x", Host: host, Network: "eip155:8453", Asset: common.HexToAddress(tAsset), Token: token, Decimals: 6,
		Amount: big.NewInt(atomic), USDNano: atomic * 1000, PayTo: common.HexToAddress(tPayTo),
		Payer: common.HexToAddress("0x3333333333333333333333333333333333333333"), Nonce: [32]byte(bytes.Repeat([]byte{nonce % 16 << 4}, 32)),
		ValidBefore: time.Now().Add(time.Hour).Unix(),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := led.MarkSent(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if err := led.Settle(context.Background(), r.ID, tTx, nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConsoleNeedsSession: without the session cookie nothing is shown and
// nothing changes.
func TestConsoleNeedsSession(t *testing.T) {
	f := newFixture(t)
	a := askApproval(t, f.led, "terms")
	c := f.client(t)
	resp := get(t, c, f.ts.URL+"/")
	if page := body(t, resp); resp.StatusCode != http.StatusUnauthorized || strings.Contains(page, a.ID) || !strings.Contains(page, "one-time login link") {
		t.Errorf("GET / without a session: %d\n%s", resp.StatusCode, page)
	}
	if resp := get(t, c, f.ts.URL+"/events"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /events without a session: %d", resp.StatusCode)
	}
	for _, verb := range []string{"approve", "deny"} {
		resp := f.post(t, c, "/approvals/"+a.ID+"/"+verb, url.Values{"csrf": {strings.Repeat("0", 64)}}, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d", verb, resp.StatusCode)
		}
	}
	// A made-up session cookie is no session.
	u, _ := url.Parse(f.ts.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: strings.Repeat("a", 64)}})
	if resp := f.post(t, c, "/approvals/"+a.ID+"/approve", url.Values{"csrf": {strings.Repeat("0", 64)}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST with a made-up session: %d", resp.StatusCode)
	}
	if s := stateOf(t, f.led, a.ID); s != ledger.ApprovalPending {
		t.Fatalf("approval is %s after unauthenticated requests, want pending", s)
	}
}

// TestConsoleCSRF: a POST without the session's CSRF token, or from another
// origin, is refused with 403 and changes nothing; the right one decides.
func TestConsoleCSRF(t *testing.T) {
	f := newFixture(t)
	a := askApproval(t, f.led, "terms")
	c := f.client(t)
	csrf := f.login(t, c)
	path := "/approvals/" + a.ID + "/approve"
	for name, tc := range map[string]struct {
		form   url.Values
		header map[string]string
	}{
		"missing token":                  {url.Values{}, nil},
		"wrong token":                    {url.Values{"csrf": {strings.Repeat("0", 64)}}, nil},
		"short token":                    {url.Values{"csrf": {csrf[:10]}}, nil},
		"foreign origin":                 {url.Values{"csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}},
		"cross-site fetch":               {url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"same-site, not same":            {url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "same-site"}},
		"null origin, no fetch metadata": {url.Values{"csrf": {csrf}}, map[string]string{"Origin": "null", "Sec-Fetch-Site": ""}},
		"null origin, cross-site":        {url.Values{"csrf": {csrf}}, map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site"}},
		"token in query, only":           {nil, nil},
	} {
		p := path
		if tc.form == nil {
			p += "?csrf=" + csrf
		}
		if resp := f.post(t, c, p, tc.form, tc.header); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
		if s := stateOf(t, f.led, a.ID); s != ledger.ApprovalPending {
			t.Fatalf("%s: approval is %s, want pending", name, s)
		}
	}
	// Another session's token is not this session's.
	other := f.client(t)
	otherCSRF := f.login(t, other)
	if resp := f.post(t, c, path, url.Values{"csrf": {otherCSRF}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another session's token: %d", resp.StatusCode)
	}
	if resp := f.post(t, c, path, url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve with the session's token: %d", resp.StatusCode)
	}
	if s := stateOf(t, f.led, a.ID); s != ledger.ApprovalApproved {
		t.Fatalf("approval is %s, want approved", s)
	}
	page := body(t, get(t, c, f.ts.URL+"/"))
	if !strings.Contains(page, "Approved "+a.ID) {
		t.Errorf("no confirmation after approving:\n%s", page)
	}
	// A decision is final, and the page says so.
	if resp := f.post(t, c, "/approvals/"+a.ID+"/deny", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deny after approve: %d", resp.StatusCode)
	}
	if page := body(t, get(t, c, f.ts.URL+"/")); !strings.Contains(page, "already approved") || stateOf(t, f.led, a.ID) != ledger.ApprovalApproved {
		t.Errorf("deny after approve:\n%s", page)
	}
	d := askApproval(t, f.led, "other terms")
	if resp := f.post(t, c, "/approvals/"+d.ID+"/deny", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther || stateOf(t, f.led, d.ID) != ledger.ApprovalDenied {
		t.Errorf("deny: %d", resp.StatusCode)
	}
	// Logging out ends the session: its token decides nothing any more.
	e := askApproval(t, f.led, "third terms")
	if resp := f.post(t, c, "/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp := f.post(t, c, "/approvals/"+e.ID+"/approve", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusUnauthorized || stateOf(t, f.led, e.ID) != ledger.ApprovalPending {
		t.Errorf("approve after logout: %d", resp.StatusCode)
	}
}

// TestConsoleLogin: a one-time code works once and not after it expired;
// the token logs in; a wrong token does not.
func TestConsoleLogin(t *testing.T) {
	f := newFixture(t)
	link := f.srv.LoginURL(f.ts.URL)
	if resp := get(t, f.client(t), link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	c := f.client(t)
	resp := get(t, c, link)
	if page := body(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "already used or has expired") || len(resp.Cookies()) != 0 {
		t.Errorf("reused code: %d %v", resp.StatusCode, resp.Cookies())
	}
	if resp := get(t, c, f.ts.URL+"/"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after a reused code: %d", resp.StatusCode)
	}
	late := f.srv.LoginURL(f.ts.URL)
	f.advance(LoginCodeTTL + time.Second)
	if resp := get(t, c, late); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired code: %d", resp.StatusCode)
	}
	if resp := get(t, c, f.ts.URL+"/login?code="+strings.Repeat("0", 64)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("made-up code: %d", resp.StatusCode)
	}

	if resp := f.post(t, c, "/login", url.Values{"token": {strings.Repeat("x", 40)}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if resp := f.post(t, c, "/login", url.Values{"token": {strings.Repeat("t", 40)}}, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("token from another origin: %d", resp.StatusCode)
	}
	resp = f.post(t, c, "/login", url.Values{"token": {strings.Repeat("t", 40)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("token login: %d", resp.StatusCode)
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/" || len(ck[0].Value) != 64 {
		t.Errorf("session cookie: %+v", ck)
	}
	if resp := get(t, c, f.ts.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("after token login: %d", resp.StatusCode)
	}
	// Sessions expire.
	f.advance(SessionTTL + time.Second)
	if resp := get(t, c, f.ts.URL+"/"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the session expired: %d", resp.StatusCode)
	}
}

// TestConsoleHeaders: every response, whatever it is, carries the strict
// CSP and the other headers; a foreign Host is refused (DNS rebinding);
// bodies are bounded.
func TestConsoleHeaders(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	check := func(what string, resp *http.Response) {
		t.Helper()
		resp.Body.Close()
		h := resp.Header
		if h.Get("Content-Security-Policy") != csp || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s (%d): headers %v", what, resp.StatusCode, h)
		}
	}
	for _, p := range []string{"/", "/login", "/login?code=bad", "/events", "/static/console.css", "/static/console.js", "/nope", "/approvals/x/approve"} {
		check("GET "+p, get(t, c, f.ts.URL+p))
	}
	check("POST /approvals", f.post(t, c, "/approvals/ap-aaaaaaaa/approve", nil, nil))
	csrf := f.login(t, c)
	for _, p := range []string{"/", "/static/console.css", "/nope"} {
		check("GET "+p+" logged in", get(t, c, f.ts.URL+p))
	}
	check("POST wrong csrf", f.post(t, c, "/approvals/ap-aaaaaaaa/approve", url.Values{"csrf": {"x"}}, nil))
	check("POST decide", f.post(t, c, "/approvals/ap-aaaaaaaa/approve", url.Values{"csrf": {csrf}}, nil))
	big := url.Values{"csrf": {csrf}, "pad": {strings.Repeat("a", 64<<10)}}
	resp := f.post(t, c, "/approvals/ap-aaaaaaaa/approve", big, nil)
	check("POST too large", resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a body over the bound: %d, want refused", resp.StatusCode)
	}
	for p, ct := range map[string]string{"/static/console.css": "text/css", "/static/console.js": "text/javascript"} {
		if got := get(t, c, f.ts.URL+p).Header.Get("Content-Type"); !strings.HasPrefix(got, ct) {
			t.Errorf("%s: Content-Type %s", p, got)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, f.ts.URL+"/", nil)
	req.Host = "attacker.example:80"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	check("foreign Host", resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: %d", resp.StatusCode)
	}
}

// TestConsolePage: the page shows the pending approval with its terms and
// buttons, the payments with explorer links, budgets, charts and the
// policy; what other parties wrote is shown cleaned.
func TestConsolePage(t *testing.T) {
	f := newFixture(t)
	a := askApproval(t, f.led, "terms")
	settle(t, f.led, "api.example.com", "USDC", 10_000, 1)
	settle(t, f.led, "api.example.com", "USDC", 20_000, 2)
	// A token symbol with a bidi override, a zero-width space and an
	// escape character: the ledger keeps what the server said.
	settle(t, f.led, "weather.example", "US\u202eDC\u200b\u2066!", 30_000, 3)
	// A failed payment is listed but counts nowhere: not in the budgets,
	// the charts or the breakdowns.
	failed, err := f.led.Reserve(context.Background(), ledger.Record{
		URL: "https://failed.example/v1/x", Host: "failed.example", Network: "eip155:8453", Asset: common.HexToAddress(tAsset), Token: "USDC", Decimals: 6,
		Amount: big.NewInt(40_000), USDNano: 40_000_000, PayTo: common.HexToAddress(tPayTo),
		Payer: common.HexToAddress("0x3333333333333333333333333333333333333333"), Nonce: [32]byte(bytes.Repeat([]byte{0x4f}, 32)),
		ValidBefore: time.Now().Add(time.Hour).Unix(),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.led.Fail(context.Background(), failed.ID, "the server refused it"); err != nil {
		t.Fatal(err)
	}
	c := f.client(t)
	f.login(t, c)
	page := body(t, get(t, c, f.ts.URL+"/"))
	for _, want := range []string{
		a.ID, "api.example.com", "0.25 USDC", tPayTo, "GET /v1/forecast?city=Lisbon", "claude-ai (pid 4242)",
		`action="/approvals/` + a.ID + `/approve"`, `action="/approvals/` + a.ID + `/deny"`,
		"daily budget", "budget.day", "0.06 USD of 1.00 USD", "0.94 USD left", "frees: 0.01 USD at",
		"payments per minute", "3 payments of 30 payments",
		`href="https://basescan.org/tx/` + tTx + `"`, "settled",
		"weather.example", "0.03 USD", "0.06 USD", "total 0.06 USD", `<span class="tag failed" title="the server refused it">failed</span>`,
		"Each payment: at most 0.10 USD (default)", `class="default"`,
		`<rect class="bar"`, "<svg", `src="/static/console.js"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"\u202e", "\u200b", "\u2066", " style=", "<script>", "onclick", "http://", "https://cdn"} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	if shares := page[strings.Index(page, "By host"):strings.Index(page, "Recent payments")]; strings.Contains(shares, "failed.example") {
		t.Errorf("a failed payment is counted in the breakdown:\n%s", shares)
	}
	if !strings.Contains(page, "USDC!") {
		t.Errorf("the cleaned token symbol is not shown")
	}
}

// TestConsoleEvents: the live stream says "change" when another process
// writes the ledger.
func TestConsoleEvents(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	f.login(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.ts.URL+"/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, ct)
	}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		askApproval(t, f.led, "live")
	}()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: change" {
			return
		}
	}
	t.Fatalf("no change event: %v", sc.Err())
}

// TestTokenFile: created 0600 with a 256-bit token, read back the same,
// refused when others can read it.
func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console-token")
	tok, created, err := TokenFile(path)
	if err != nil || !created || len(tok) != 64 {
		t.Fatalf("create: %q %v %v", tok, created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
	again, created, err := TokenFile(path)
	if err != nil || created || again != tok {
		t.Fatalf("read: %v %v", created, err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := TokenFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable token file: %v", err)
	}
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := TokenFile(short); err == nil {
		t.Error("a token file without a token was accepted")
	}
}

// TestConsoleBehindProxy: with AllowRemote, the Host a TLS proxy passes is
// accepted, and a login over HTTPS (X-Forwarded-Proto) gets a Secure
// cookie; without AllowRemote the header is not trusted.
func TestConsoleBehindProxy(t *testing.T) {
	f := newFixture(t)
	remote := New(Options{Ledger: f.led, Policy: policy.Default(), AllowRemote: true})
	for _, tc := range []struct {
		srv    *Server
		host   string
		status int
		secure bool
	}{
		{remote, "console.example.org", http.StatusSeeOther, true},
		{f.srv, "127.0.0.1", http.StatusSeeOther, false},
		{f.srv, "console.example.org", http.StatusForbidden, false},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://"+tc.host+"/login?code="+strings.TrimPrefix(tc.srv.LoginURL(""), "/login?code="), nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		rec := httptest.NewRecorder()
		tc.srv.ServeHTTP(rec, req)
		ck := rec.Result().Cookies()
		if rec.Code != tc.status || (tc.status == http.StatusSeeOther && (len(ck) != 1 || ck[0].Secure != tc.secure)) {
			t.Errorf("host %s, remote %v: %d %+v", tc.host, tc.srv.opts.AllowRemote, rec.Code, ck)
		}
		if rec.Header().Get("Content-Security-Policy") != csp {
			t.Errorf("host %s: no CSP", tc.host)
		}
	}
}

// TestPercent: a bar's length in integers, without overflow at the
// largest limits the ledger holds.
func TestPercent(t *testing.T) {
	const maxNano = 1<<63 - 1
	for _, tc := range []struct {
		a, b int64
		want int
	}{{0, 10, 0}, {5, 10, 50}, {10, 10, 100}, {11, 10, 100}, {1, maxNano, 1}, {maxNano - 1, maxNano, 99}, {maxNano / 2, maxNano, 49}, {3, 0, 0}} {
		if got := percent(tc.a, tc.b); got != tc.want {
			t.Errorf("percent(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestPagesParse parses the templates, which the package parses on first
// use rather than at init: a broken template fails here.
func TestPagesParse(t *testing.T) {
	for _, name := range []string{"login.html", "console.html"} {
		if pages().Lookup(name) == nil {
			t.Errorf("no template %q among the console's pages", name)
		}
	}
}

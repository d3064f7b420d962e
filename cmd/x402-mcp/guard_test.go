package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"
)

// hitCounter serves on a loopback address and counts the requests that
// reach it, by method.
type hitCounter struct {
	url  string
	hits atomic.Int64
	mu   sync.Mutex
	by   map[string]int
}

func (h *hitCounter) count(method string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.by[method]
}

// serveCounting listens on ip (port 0) and answers with handler, counting
// every request. It skips the test when the address cannot be bound (an
// IPv6-less machine for ::1).
func serveCounting(t *testing.T, ip string, handler http.HandlerFunc) *hitCounter {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	h := &hitCounter{url: "http://" + ln.Addr().String(), by: map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		h.mu.Lock()
		h.by[r.Method]++
		h.mu.Unlock()
		handler(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

// withAllowPrivate rewrites the demo config's http.allow_private: the
// entries given, or none at all.
func withAllowPrivate(t *testing.T, cfg string, entries ...string) string {
	t.Helper()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const line = `allow_private = ["127.0.0.1"]`
	if !strings.Contains(string(data), line) {
		t.Fatalf("%s has no %s", cfg, line)
	}
	repl := ""
	if len(entries) > 0 {
		quoted := make([]string, len(entries))
		for i, e := range entries {
			quoted[i] = fmt.Sprintf("%q", e)
		}
		repl = "allow_private = [" + strings.Join(quoted, ", ") + "]"
	}
	out := filepath.Join(filepath.Dir(cfg), fmt.Sprintf("config-%d.toml", len(entries)))
	if err := os.WriteFile(out, []byte(strings.Replace(string(data), line, repl, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPrivateDestinationsRefused drives the binary with the official
// client and a config without http.allow_private: every private
// destination the agent names is refused as a tool error naming the rule
// and the config file, the servers behind them see nothing, and nothing
// is paid, even for the local paid API that the devnet config allows.
func TestPrivateDestinationsRefused(t *testing.T) {
	tsClientDir(t)
	n, devCfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	cfg := withAllowPrivate(t, devCfg)
	absCfg, _ := filepath.Abs(cfg)
	payer0 := chainBalance(t, n, payer)
	v4 := serveCounting(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("private")) })
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(v4.url, "http://"))

	cases := []struct {
		step tsStep
		rule string
	}{
		{fetchStep(map[string]any{"url": v4.url + "/admin"}), "127.0.0.1 is a loopback address"},
		{fetchStep(map[string]any{"url": "http://[::ffff:127.0.0.1]:" + port + "/admin"}), "::ffff:127.0.0.1 (that is 127.0.0.1) is a loopback address"},
		{fetchStep(map[string]any{"url": "http://localhost:" + port + "/"}), "localhost resolves to"},
		{fetchStep(map[string]any{"url": "http://[::1]:" + port + "/"}), "::1 is a loopback address"},
		// Nothing listens there, and nothing is sent: the guard refuses
		// before connecting.
		{fetchStep(map[string]any{"url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}), "169.254.169.254 is the cloud metadata address"},
		{fetchStep(map[string]any{"url": "http://10.0.0.1:8080/internal"}), "10.0.0.1 is a private address (RFC 1918)"},
		{fetchStep(map[string]any{"url": "http://[fd00:ec2::254]/latest/meta-data/"}), "fd00:ec2::254 is the cloud metadata address"},
		{tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": v4.url + "/admin"}}, "127.0.0.1 is a loopback address"},
		// The local paid API: priced, and still not reached.
		{fetchStep(map[string]any{"url": n.APIURL + "/v2/weather?city=Lisbon"}), "127.0.0.1 is a loopback address"},
	}
	steps := make([]tsStep, len(cases))
	for i, c := range cases {
		steps[i] = c.step
	}
	steps = append(steps, tsStep{Op: "call", Name: "x402_discover", Arguments: map[string]any{"probe": []string{v4.url + "/probe"}}})
	res := called(t, tsClient(t, plan(cfg, steps...)))
	for i, c := range cases {
		r := res[i]
		text := r.Text()
		if !r.IsError() || !strings.Contains(text, "refused: "+c.rule) || !strings.Contains(text, "http.allow_private in "+absCfg) ||
			!strings.Contains(text, "Nothing was sent to that address") {
			t.Errorf("%s: isError %v, %q\nwant the rule %q and the config %s", c.step, r.IsError(), text, c.rule, absCfg)
		}
	}
	probe := res[len(cases)]
	if p := gjson.Get(probe.Structured(), "problems").String(); !strings.Contains(p, "refused: 127.0.0.1 is a loopback address") {
		t.Errorf("discover probe: problems %s", p)
	}
	if got := v4.hits.Load(); got != 0 {
		t.Errorf("the private server was reached %d times", got)
	}
	if got := chainBalance(t, n, payer); got.Cmp(payer0) != 0 {
		t.Errorf("payer balance %s, was %s: something was paid", got, payer0)
	}
}

// TestRedirectToPrivateRefused: the operator allows 127.0.0.1 only; a
// server there redirects to 127.0.0.2, and that hop is refused at connect
// time. Listing 127.0.0.2 too lets exactly that address through.
func TestRedirectToPrivateRefused(t *testing.T) {
	tsClientDir(t)
	_, devCfg, _ := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	target := serveCounting(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("inside")) })
	origin := serveCounting(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.url+"/inside", http.StatusFound)
	})

	one := withAllowPrivate(t, devCfg, "127.0.0.1")
	res := called(t, tsClient(t, plan(one, fetchStep(map[string]any{"url": origin.url + "/go"}),
		tsStep{Op: "call", Name: "x402_quote", Arguments: map[string]any{"url": origin.url + "/go"}})))
	for _, r := range res {
		if !r.IsError() || !strings.Contains(r.Text(), "refused: 127.0.0.2 is a loopback address") {
			t.Errorf("redirect to 127.0.0.2: isError %v, %q", r.IsError(), r.Text())
		}
	}
	if origin.hits.Load() != 2 || target.hits.Load() != 0 {
		t.Fatalf("origin reached %d times (want 2), the refused target %d (want 0)", origin.hits.Load(), target.hits.Load())
	}

	both := withAllowPrivate(t, devCfg, "127.0.0.1", "127.0.0.2")
	res = called(t, tsClient(t, plan(both, fetchStep(map[string]any{"url": origin.url + "/go"}))))
	if r := res[0]; r.IsError() || gjson.Get(r.Structured(), "body").String() != "inside" {
		t.Errorf("with 127.0.0.2 allowed: isError %v, %s", r.IsError(), r.Text())
	}
	if target.hits.Load() != 1 {
		t.Errorf("the allowed target was reached %d times, want 1", target.hits.Load())
	}
}

// TestQuoteSendsOnlyGETOrHEAD: x402_quote is read-only (hosts run it
// without asking), so it never sends a method that may change something.
// A DELETE, PUT or POST with a body reaches no server: it is answered from
// the facilitator's listing when that lists the endpoint with the method,
// and otherwise the answer says that x402_fetch learns the price.
func TestQuoteSendsOnlyGETOrHEAD(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	payer0 := chainBalance(t, n, payer)
	srv := serveCounting(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	quote := func(args map[string]any) tsStep { return tsStep{Op: "call", Name: "x402_quote", Arguments: args} }
	asJSON := map[string]any{"Content-Type": "application/json"}
	summarize := n.APIURL + "/v2/summarize"

	res := called(t, tsClient(t, plan(cfg,
		quote(map[string]any{"url": srv.url + "/items/7", "method": "DELETE"}),
		quote(map[string]any{"url": srv.url + "/items", "method": "POST", "headers": asJSON, "body": `{"name":"x"}`}),
		quote(map[string]any{"url": srv.url + "/items/7", "method": "put", "body": "x"}),
		quote(map[string]any{"url": summarize, "method": "POST", "headers": asJSON, "body": `{"text":"One. Two."}`}),
		quote(map[string]any{"url": summarize, "method": "POST"}),
		quote(map[string]any{"url": srv.url + "/items"}),
		quote(map[string]any{"url": srv.url + "/items", "method": "HEAD"}),
	)))
	for i, method := range []string{"DELETE", "POST", "PUT"} {
		r := res[i]
		if !r.IsError() || !strings.Contains(r.Text(), "Nothing was sent: x402_quote sends only GET and HEAD, and a "+method) ||
			!strings.Contains(r.Text(), "learned by x402_fetch") {
			t.Errorf("quote %s: isError %v, %q", method, r.IsError(), r.Text())
		}
	}
	listed, lacking := res[3].Structured(), res[4].Structured()
	if res[3].IsError() || !gjson.Get(listed, "listed").Bool() || gjson.Get(listed, "status").Int() != 0 ||
		gjson.Get(listed, "verdict").String() != "allowed" || gjson.Get(listed, "options.0.amount").String() != "0.03" ||
		!strings.Contains(gjson.Get(listed, "note").String(), "facilitator "+n.FacilitatorURL) || gjson.Get(listed, "missing_inputs").Exists() {
		t.Errorf("quote POST of a listed endpoint: %s\n%s", res[3].Text(), listed)
	}
	// The listing shows how to call it (an example body), which is not
	// enough to call a field required.
	if res[4].IsError() || !gjson.Get(lacking, "listed").Bool() || gjson.Get(lacking, "inputs.method").String() != "POST" {
		t.Errorf("quote POST without a body: %s", lacking)
	}
	if r := res[5]; r.IsError() || gjson.Get(r.Structured(), "verdict").String() != "free" {
		t.Errorf("quote GET: %s", r.Text())
	}
	if r := res[6]; r.IsError() || gjson.Get(r.Structured(), "verdict").String() != "free" {
		t.Errorf("quote HEAD: %s", r.Text())
	}
	for method, want := range map[string]int{"DELETE": 0, "POST": 0, "PUT": 0, "GET": 1, "HEAD": 1} {
		if got := srv.count(method); got != want {
			t.Errorf("the server got %d %s requests, want %d", got, method, want)
		}
	}
	if got := n.API.Hits("/v2/summarize"); got != 0 {
		t.Errorf("the listed endpoint's handler ran %d times", got)
	}
	if got := chainBalance(t, n, payer); got.Cmp(payer0) != 0 {
		t.Errorf("payer balance %s, was %s", got, payer0)
	}
}

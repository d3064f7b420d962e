package pay

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/tokens"
)

// countingServer serves on addr (a loopback IP) and counts the requests
// that reach it.
func countingServer(t *testing.T, ip string, h http.HandlerFunc) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	var hits atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), &hits
}

// TestPrivateDestinationsRefused: without an allow list, the paid API on
// loopback is refused before any connection, by quote and fetch alike, and
// nothing is signed; the error names the rule and where to allow it.
func TestPrivateDestinationsRefused(t *testing.T) {
	t.Parallel()
	n := startNet(t, localnet.NetworkConfig{}, funding)
	c := n.clientFor(t, Config{Policy: policy.Default(), Ledger: openLedger(t), AllowPrivate: []netip.Prefix{}, AllowPrivateSource: "/etc/x402-mcp/config.toml"})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(n.APIURL, "http://"))
	for _, u := range []string{
		n.APIURL + "/v2/weather?city=Lisbon",
		"http://[::ffff:127.0.0.1]:" + port + "/v2/weather?city=Lisbon",
		"http://localhost:" + port + "/v2/weather?city=Lisbon",
		"http://10.0.0.1/",
		"http://169.254.169.254/latest/meta-data/",
	} {
		_, qerr := c.Quote(context.Background(), Request{URL: u})
		_, ferr := c.Fetch(context.Background(), Request{URL: u})
		for _, err := range []error{qerr, ferr} {
			var pe *PrivateAddressError
			if !errors.As(err, &pe) {
				t.Errorf("%s: %v, want a *PrivateAddressError", u, err)
				continue
			}
			if !strings.Contains(err.Error(), "http.allow_private in /etc/x402-mcp/config.toml") {
				t.Errorf("%s: %q does not say where to allow it", u, err)
			}
		}
	}
	if got := n.signer.calls.Load(); got != 0 {
		t.Errorf("signed %d times", got)
	}
}

// TestRedirectToPrivateRefused: the allowed server redirects to another
// loopback address; the hop is refused at connect time, and the target
// sees nothing, unless it is allowed itself.
func TestRedirectToPrivateRefused(t *testing.T) {
	t.Parallel()
	target, hits := countingServer(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("internal secret"))
	})
	origin, _ := countingServer(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+"/admin", http.StatusFound)
	})
	reg := tokens.Builtin()
	one := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	c, err := New(Config{Registry: reg, Policy: policy.Default(), AllowPrivate: one})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Quote(context.Background(), Request{URL: origin + "/go"})
	var pe *PrivateAddressError
	if !errors.As(err, &pe) || pe.IP != netip.MustParseAddr("127.0.0.2") || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("redirect to 127.0.0.2: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the private target was reached %d times", hits.Load())
	}

	both := append(one, netip.MustParsePrefix("127.0.0.2/32"))
	c, err = New(Config{Registry: reg, Policy: policy.Default(), AllowPrivate: both})
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.Quote(context.Background(), Request{URL: origin + "/go"})
	if err != nil || !q.Free || hits.Load() != 1 {
		t.Fatalf("with 127.0.0.2 allowed: %+v, %v, %d hits", q, err, hits.Load())
	}
}

// TestQuoteSendsOnlyGETOrHEAD: Quote never sends a method that may change
// something; it says so with *WriteMethodError, and the server sees only
// the GET and HEAD.
func TestQuoteSendsOnlyGETOrHEAD(t *testing.T) {
	t.Parallel()
	methods := map[string]int{}
	var mu sync.Mutex
	srv, hits := countingServer(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods[r.Method]++
		mu.Unlock()
	})
	c, err := New(Config{Registry: tokens.Builtin(), Policy: policy.Default(), AllowPrivate: loopback})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "delete"} {
		_, err := c.Quote(context.Background(), Request{Method: m, URL: srv + "/x", Body: []byte(`{"a":1}`)})
		var we *WriteMethodError
		if !errors.As(err, &we) || we.Method != strings.ToUpper(m) {
			t.Errorf("Quote %s: %v, want a *WriteMethodError", m, err)
		}
	}
	for _, m := range []string{"", "GET", "HEAD"} {
		if q, err := c.Quote(context.Background(), Request{Method: m, URL: srv + "/x"}); err != nil || !q.Free {
			t.Errorf("Quote %q: %+v, %v", m, q, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if hits.Load() != 3 || methods["GET"] != 2 || methods["HEAD"] != 1 {
		t.Errorf("the server saw %v", methods)
	}
}

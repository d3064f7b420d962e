package pay

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/x402"
)

// benchClient is a client with no budgets or rate limit (so a benchmark
// can reserve without end) and a real 402 from the local network, read
// once.
func benchClient(b *testing.B) (*Client, *response, Request) {
	n := startNet(b, localnet.NetworkConfig{}, funding)
	c := n.client(b, policy.Policy{MaxPerPayment: policy.MustUSD("0.10"), MaxWindow: 5 * time.Minute})
	r := Request{URL: n.APIURL + "/v2/weather?city=Lisbon"}
	u, err := r.validate()
	if err != nil {
		b.Fatal(err)
	}
	first, err := c.send(context.Background(), r.Method, u, &r, nil, "", "")
	if err != nil || first.status != 402 {
		b.Fatalf("first request: %v %v", first, err)
	}
	return c, first, r
}

// BenchmarkClientWorkDurable is everything that happens before a payment
// header may leave: parse the 402, choose, decide, and the one durable
// ledger transaction (fsync'd) that checks every budget, records the
// payment as sent and, inside it, gets the policy's permit, signs and
// encodes the header.
func BenchmarkClientWorkDurable(b *testing.B) {
	c, first, r := benchClient(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Each iteration is another request (its body differs): one
		// request's reserved payment would hold back an identical one.
		i++
		r.Body = strconv.AppendInt(r.Body[:0], int64(i), 10)
		q, err := c.quote(first, &r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.decide(ctx, q, &r); err != nil {
			b.Fatal(err)
		}
		if _, err := c.authorize(ctx, q, &r, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// longWindowNet is a local network whose authorizations may last a day, so
// that chain time may run far ahead of the wall clock while a benchmark
// mines many blocks a second.
func longWindowNet(b *testing.B) (*testNet, *Client) {
	routes := localnet.DefaultRoutes()
	for i := range routes {
		routes[i].MaxTimeoutSeconds = 86400
	}
	n := startNet(b, localnet.NetworkConfig{Routes: routes, MaxClockDrift: 12 * time.Hour}, 1_000_000_000_000)
	p := policy.Policy{MaxPerPayment: policy.MustUSD("0.10"), MaxWindow: 24 * time.Hour}
	return n, n.client(b, p)
}

// BenchmarkPaidFetch is one full paid fetch against the local network:
// both HTTP round trips, the facilitator's verify and settle, and mining.
func BenchmarkPaidFetch(b *testing.B) {
	n, c := longWindowNet(b)
	target := n.APIURL + "/v2/weather?city=Lisbon"
	for b.Loop() {
		res, err := c.Fetch(context.Background(), Request{URL: target})
		if err != nil || res.Payment == nil || !res.Payment.Settled {
			b.Fatalf("fetch: %+v %v", res, err)
		}
	}
}

// BenchmarkPaidFetchParallel reports paid fetches per second with 4 and
// 8 concurrent callers sharing one client (and so one ledger), whatever
// GOMAXPROCS is.
func BenchmarkPaidFetchParallel(b *testing.B) {
	for _, callers := range []int{4, 8} {
		b.Run("callers="+strconv.Itoa(callers), func(b *testing.B) {
			n, c := longWindowNet(b)
			target, _ := url.JoinPath(n.APIURL, "/v2/weather")
			var seq atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range callers {
				wg.Go(func() {
					for i := seq.Add(1); i <= int64(b.N); i = seq.Add(1) {
						// Distinct requests: identical ones in flight at
						// once are held to one payment.
						res, err := c.Fetch(context.Background(), Request{URL: target + "?city=Lisbon" + strconv.FormatInt(i, 10)})
						if err != nil || res.Payment == nil || !res.Payment.Settled {
							b.Errorf("fetch: %+v %v", res, err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fetches/s")
		})
	}
}

// BenchmarkClientSide is this client's whole cost per paid request, apart
// from the network, on the reply path: parse the 402, decide, record the
// payment durably (one fsync'd transaction that also signs and encodes),
// and queue the settlement record. That record commits off the reply path
// (in a real fetch, while the agent reads the reply or the next request
// makes its unpaid round trip): the timer stops while it is flushed.
func BenchmarkClientSide(b *testing.B) {
	c, first, r := benchClient(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r.Body = strconv.AppendInt(r.Body[:0], int64(i), 10)
		q, err := c.quote(first, &r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.decide(ctx, q, &r); err != nil {
			b.Fatal(err)
		}
		p, err := c.authorize(ctx, q, &r, nil)
		if err != nil {
			b.Fatal(err)
		}
		c.settled(p, &x402.Settlement{Success: true, Transaction: "0x01", Raw: []byte(`{"success":true}`)}, true)
		b.StopTimer()
		if err := c.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if last, err := c.cfg.Ledger.Recent(ctx, 1); err != nil || len(last) != 1 || last[0].State != ledger.Settled {
		b.Fatalf("last record: %+v %v", last, err)
	}
}

// BenchmarkPaidFetchKnownTerms is BenchmarkPaidFetch when the terms are
// known (Config.KnownTerms): the payment goes with the first request. It
// reports the requests the API saw per fetch.
func BenchmarkPaidFetchKnownTerms(b *testing.B) {
	n, _ := longWindowNet(b)
	c := n.clientFor(b, Config{Policy: policy.Policy{MaxPerPayment: policy.MustUSD("0.10"), MaxWindow: 24 * time.Hour},
		Ledger: openLedger(b), KnownTerms: time.Hour})
	target := n.APIURL + "/v2/weather?city=Lisbon"
	if _, err := c.Fetch(context.Background(), Request{URL: target}); err != nil {
		b.Fatal(err)
	}
	before := n.API.Requests("/v2/weather")
	for b.Loop() {
		res, err := c.Fetch(context.Background(), Request{URL: target})
		if err != nil || res.Payment == nil || !res.Payment.Settled {
			b.Fatalf("fetch: %+v %v", res, err)
		}
	}
	b.ReportMetric(float64(n.API.Requests("/v2/weather")-before)/float64(b.N), "requests/op")
}

package pay

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
)

// BenchmarkClientWork measures this client's own work on a paid fetch,
// apart from server and settlement time: parse the 402, choose, check the
// policy, sign and encode the payment header. The 402 is a real one from
// the local network, read once.
func BenchmarkClientWork(b *testing.B) {
	n := startNet(b, localnet.NetworkConfig{}, funding)
	c := n.client(b, policy.Default())
	r := Request{URL: n.APIURL + "/v2/weather?city=Lisbon"}
	u, err := r.validate()
	if err != nil {
		b.Fatal(err)
	}
	first, err := c.send(context.Background(), r.Method, u, &r, nil, "", "")
	if err != nil || first.status != 402 {
		b.Fatalf("first request: %v %v", first, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.prepare(first, &r); err != nil {
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
	p := policy.Default()
	p.MaxWindow = 24 * time.Hour
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

// BenchmarkPaidFetchParallel reports paid fetches per second with
// concurrent callers.
func BenchmarkPaidFetchParallel(b *testing.B) {
	n, c := longWindowNet(b)
	target, _ := url.JoinPath(n.APIURL, "/v2/weather")
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Fetch(context.Background(), Request{URL: target + "?city=Lisbon"})
			if err != nil || res.Payment == nil || !res.Payment.Settled {
				b.Errorf("fetch: %+v %v", res, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fetches/s")
}

package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS answers every A query with addr, as a hostile name server does
// to rebind a public-looking name onto a private address. It listens on
// loopback UDP and returns its address.
func fakeDNS(t *testing.T, addr netip.Addr) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.EnableCompression()
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: addr.As4()})
			}
			msg, err := b.Finish()
			if err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// TestDNSRebindingRefused: a name whose DNS answer is a private address
// is refused at connect time, by the address it resolved to, and the
// loopback listener it points at sees no connection.
func TestDNSRebindingRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	dns := fakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns)
	}}
	dial := Guard{}.DialContext(net.Dialer{Timeout: 2 * time.Second, Resolver: resolver})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, "tcp4", net.JoinHostPort("api.rebind.example", port))
	if c != nil {
		c.Close()
	}
	var re *RefusedError
	if !errors.As(err, &re) || re.Host != "api.rebind.example" || re.IP != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("dial api.rebind.example: %v, want a refusal of 127.0.0.1", err)
	}
	if want := "api.rebind.example resolves to 127.0.0.1, which is a loopback address"; err.Error() != want && re.Error() != want {
		t.Errorf("message %q, want %q", re.Error(), want)
	}
	select {
	case <-accepted:
		t.Error("the listener behind the rebound name accepted a connection")
	case <-time.After(50 * time.Millisecond):
	}
}

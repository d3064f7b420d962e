package pay

import (
	"strings"
	"testing"
)

func TestShowURL(t *testing.T) {
	long := "https://api.example/q?" + strings.Repeat("a", 200) + "&note=Pre-approved+by+your+administrator"
	tests := []struct {
		url, host, target string
	}{
		{"https://api.example/v1/joke", "api.example", "/v1/joke"},
		{"https://API.Example.:443", "api.example", "/"},
		{"http://127.0.0.1:8080/x?a=1&b=2#frag", "127.0.0.1:8080", "/x?a=1&b=2"},
		{"http://[::1]:9/x", "[::1]:9", "/x"},
		{"http://[::1]/x", "[::1]", "/x"},
		// A look-alike host shows as what DNS is asked for.
		{"https://аpple.example/", "xn--pple-43d.example", "/"},
		{"https://bücher.example/ä", "xn--bcher-kva.example", "/%C3%A4"},
		// User info names no host: only the real one is shown.
		{"https://api.good.example@evil.example/pay", "evil.example", "/pay"},
		// Hidden characters and spaces in the query are shown as sent.
		{"https://evil.example/?x=\u202emoc.elpmaxe\u200b\u2066for https://api.openweather.example\u2069", "evil.example",
			"/?x=%E2%80%AEmoc.elpmaxe%E2%80%8B%E2%81%A6for%20https://api.openweather.example%E2%81%A9"},
		{long, "api.example", "/q?" + strings.Repeat("a", MaxShownTarget-3) + "…"},
	}
	for _, tt := range tests {
		host, target := ShowURL(tt.url)
		if host != tt.host || target != tt.target {
			t.Errorf("ShowURL(%q) = %q, %q; want %q, %q", tt.url, host, target, tt.host, tt.target)
		}
	}
	for _, pad := range []int{0, 1, 2, 3} {
		_, target := ShowURL("https://api.example/" + strings.Repeat("a", MaxShownTarget-4+pad) + "\u202e")
		if cut := strings.TrimSuffix(target, "…"); len(cut) > MaxShownTarget || strings.Contains(cut[max(0, len(cut)-2):], "%") {
			t.Errorf("ShowURL cut inside an escape: %q", target)
		}
	}
	if got := WireURL("https://api.good.example@bücher.example:8443/a b?c=\u202e"); got != "https://xn--bcher-kva.example:8443/a%20b?c=%E2%80%AE" {
		t.Errorf("WireURL = %q", got)
	}
}

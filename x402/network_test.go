package x402

import (
	"errors"
	"strings"
	"testing"
)

func TestCAIP2(t *testing.T) {
	tests := []struct {
		in, caip2 string
		id        int64
		v1        string // V1Name of the result
	}{
		{"base", "eip155:8453", 8453, "base"},
		{"base-sepolia", "eip155:84532", 84532, "base-sepolia"},
		{"polygon", "eip155:137", 137, "polygon"},
		{"polygon-amoy", "eip155:80002", 80002, "polygon-amoy"},
		{"avalanche", "eip155:43114", 43114, "avalanche"},
		{"avalanche-fuji", "eip155:43113", 43113, "avalanche-fuji"},
		{"ethereum", "eip155:1", 1, "ethereum"},
		{"arbitrum", "eip155:42161", 42161, "arbitrum"},
		{"arbitrum-sepolia", "eip155:421614", 421614, "arbitrum-sepolia"},
		{"optimism", "eip155:10", 10, "optimism"},
		{"eip155:8453", "eip155:8453", 8453, "base"},
		{"eip155:84532", "eip155:84532", 84532, "base-sepolia"},
		{"eip155:11155111", "eip155:11155111", 11155111, ""}, // any EVM chain; the registry decides
		{"eip155:18446744073709551615", "eip155:18446744073709551615", -1, ""},
	}
	for _, tc := range tests {
		caip2, id, err := CAIP2(tc.in)
		if err != nil {
			t.Errorf("CAIP2(%q): %v", tc.in, err)
			continue
		}
		if caip2 != tc.caip2 || (tc.id > 0 && id.Int64() != tc.id) || id.Sign() <= 0 {
			t.Errorf("CAIP2(%q) = %q, %v", tc.in, caip2, id)
		}
		name, ok := V1Name(caip2)
		if name != tc.v1 || ok != (tc.v1 != "") {
			t.Errorf("V1Name(%q) = %q, %v; want %q", caip2, name, ok, tc.v1)
		}
	}
	// The chain id is a fresh value: a caller changing it changes nothing here.
	_, id, _ := CAIP2("base")
	id.SetInt64(1)
	if _, again, _ := CAIP2("base"); again.Int64() != 8453 {
		t.Error("CAIP2 returned shared state")
	}
}

func TestCAIP2Unsupported(t *testing.T) {
	tests := []struct{ in, reason string }{
		{"", "empty"},
		{"solana", "not an EVM network"},
		{"solana-devnet", "not an EVM network"},
		{"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "not an EVM network"},
		{"cosmos:cosmoshub-4", "not an EVM network"},
		{"foo:1", "not an EVM (eip155) network"},
		{"Base", "unknown network name"},
		{"base ", "unknown network name"},
		{"EIP155:8453", "not an EVM (eip155) network"},
		{"eip155:", "decimal integer"},
		{"eip155:0", "between 1 and 2^64-1"},
		{"eip155:08453", "leading zeros"},
		{"eip155:+8453", "decimal integer"},
		{"eip155:-1", "decimal integer"},
		{"eip155:0x2105", "decimal integer"},
		{"eip155:8453 ", "decimal integer"},
		{"eip155:8453:1", "decimal integer"},
		{"eip155:18446744073709551616", "between 1 and 2^64-1"},
		{"eip155:123456789012345678901", "decimal integer"},
	}
	for _, tc := range tests {
		caip2, id, err := CAIP2(tc.in)
		var une *UnsupportedNetworkError
		if !errors.As(err, &une) || une.Network != tc.in || caip2 != "" || id != nil {
			t.Errorf("CAIP2(%q) = %q, %v, %v; want *UnsupportedNetworkError", tc.in, caip2, id, err)
			continue
		}
		if !errors.Is(err, ErrUnsupportedNetwork) {
			t.Errorf("CAIP2(%q): %v is not ErrUnsupportedNetwork", tc.in, err)
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("CAIP2(%q): %q does not say %q", tc.in, err, tc.reason)
		}
		if _, ok := V1Name(tc.in); ok {
			t.Errorf("V1Name(%q) ok", tc.in)
		}
	}
	if _, ok := V1Name("base"); ok {
		t.Error("V1Name accepts a v1 name; it takes CAIP-2 only")
	}
}

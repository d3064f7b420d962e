package tokens

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func TestFormatUnits(t *testing.T) {
	for _, tc := range []struct {
		units    int64
		decimals uint8
		want     string
	}{
		{0, 6, "0"},
		{1, 6, "0.000001"},
		{10000, 6, "0.01"},
		{1_000_000, 6, "1"},
		{1_234_567, 6, "1.234567"},
		{500000, 6, "0.5"},
		{42, 0, "42"},
		{-15, 1, "-1.5"},
	} {
		if got := FormatUnits(big.NewInt(tc.units), tc.decimals); got != tc.want {
			t.Errorf("FormatUnits(%d, %d) = %q, want %q", tc.units, tc.decimals, got, tc.want)
		}
	}
	if got := FormatUnits(nil, 6); got != "0" {
		t.Errorf("FormatUnits(nil) = %q", got)
	}
}

func TestParseUnits(t *testing.T) {
	for _, tc := range []struct {
		in       string
		decimals uint8
		want     string // "" means error
	}{
		{"0.01", 6, "10000"},
		{"1", 6, "1000000"},
		{"1.000001", 6, "1000001"},
		{"0", 6, "0"},
		{"007", 0, "7"},
		{"0.0000001", 6, ""}, // more decimals than the token has
		{"-1", 6, ""},
		{"+1", 6, ""},
		{"1e3", 6, ""},
		{".5", 6, ""},
		{"5.", 6, ""},
		{"", 6, ""},
		{"1,5", 6, ""},
		{"0x10", 6, ""},
		{" 1", 6, ""},
	} {
		got, err := ParseUnits(tc.in, tc.decimals)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseUnits(%q) = %s, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseUnits(%q, %d) = %v, %v; want %s", tc.in, tc.decimals, got, err, tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"0.01", "123.456789", "1", "0.000001"} {
		u, err := ParseUnits(s, 6)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatUnits(u, 6); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
}

func TestBuiltinRegistry(t *testing.T) {
	r := Builtin()
	base, ok := r.Lookup("eip155:8453", common.HexToAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"))
	if !ok || base.Name != "USD Coin" || base.Version != "2" || base.Decimals != 6 || base.ChainID.Int64() != 8453 || base.Currency != "USD" {
		t.Fatalf("Base USDC = %+v, %v", base, ok)
	}
	sep, ok := r.Lookup("eip155:84532", common.HexToAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e"))
	if !ok || sep.Name != "USDC" {
		t.Fatalf("Base Sepolia USDC = %+v, %v", sep, ok)
	}
	// The same contract address on another chain is another token.
	if _, ok := r.Lookup("eip155:1", base.Address); ok {
		t.Error("Base USDC address found on Ethereum")
	}
	if n := len(r.All()); n != 10 {
		t.Errorf("builtin has %d tokens, want 10", n)
	}
}

func TestRegistryAddOverridesAndValidates(t *testing.T) {
	r := Builtin()
	addr := common.HexToAddress("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
	if err := r.Add(Token{Network: "eip155:8453", Address: addr, Name: "Other", Version: "3", Decimals: 6, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Lookup("eip155:8453", addr); got.Name != "Other" || got.Version != "3" {
		t.Errorf("override not applied: %+v", got)
	}
	bad := []Token{
		{Network: "base", Address: addr, Name: "x", Version: "1"},
		{Network: "eip155:08453", Address: addr, Name: "x", Version: "1"},
		{Network: "solana:mainnet", Address: addr, Name: "x", Version: "1"},
		{Network: "eip155:1", Name: "x", Version: "1"},
		{Network: "eip155:1", Address: addr, Version: "1"},
		{Network: "eip155:1", Address: addr, Name: "x"},
		{Network: "eip155:1", Address: addr, Name: "x", Version: "1", Decimals: 40},
		{Network: "eip155:1", ChainID: big.NewInt(2), Address: addr, Name: "x", Version: "1"},
	}
	for i, tok := range bad {
		if err := r.Add(tok); err == nil {
			t.Errorf("bad token %d accepted: %+v", i, tok)
		}
	}
}

package x402

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func enc(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseSettlementLookupOrder(t *testing.T) {
	v2 := enc(`{"success":true,"transaction":"0xaa","network":"eip155:8453","payer":"0x01"}`)
	v1 := enc(`{"success":false,"errorReason":"insufficient_funds","transaction":"","network":"base"}`)
	tests := []struct {
		name    string
		h       http.Header
		success bool
		network string
	}{
		{"v2 only", http.Header{"Payment-Response": {v2}}, true, "eip155:8453"},
		{"v1 only", http.Header{"X-Payment-Response": {v1}}, false, "base"},
		{"v2 wins", http.Header{"Payment-Response": {v2}, "X-Payment-Response": {v1}}, true, "eip155:8453"},
		{"any case", http.Header{"payment-response": {v2}, "X-PAYMENT-RESPONSE": {v1}}, true, "eip155:8453"},
		{"empty v2 is absent", http.Header{"Payment-Response": {""}, "X-Payment-Response": {v1}}, false, "base"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSettlement(tc.h)
			if err != nil {
				t.Fatal(err)
			}
			if s.Success != tc.success || s.Network != tc.network {
				t.Errorf("got %+v", s)
			}
		})
	}
	s, err := ParseSettlement(http.Header{"Content-Type": {"application/json"}})
	if s != nil || err != nil {
		t.Errorf("no settlement header: got %v, %v; want nil, nil", s, err)
	}
	if s, err := ParseSettlement(nil); s != nil || err != nil {
		t.Errorf("nil header: got %v, %v", s, err)
	}
}

func TestParseSettlementFields(t *testing.T) {
	s, err := ParseSettlement(http.Header{"Payment-Response": {enc(
		`{"success":false,"errorReason":"invalid_exact_evm_insufficient_balance","errorMessage":"not enough\nUSDC","transaction":"","network":"eip155:84532","payer":"0x857b06519E91e3A54538791bDbb0E22373e36b66","amount":10000,"extra":{"k":1}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Success || s.ErrorReason != "invalid_exact_evm_insufficient_balance" || s.ErrorMessage != "not enough USDC" || s.Amount != "10000" {
		t.Errorf("got %+v", s)
	}
	if !strings.Contains(string(s.Raw), `"extra":{"k":1}`) {
		t.Errorf("Raw lost unknown members: %s", s.Raw)
	}
}

func TestParseSettlementErrors(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		kind ErrorKind
		msg  string
	}{
		{"bad base64", http.Header{"Payment-Response": {"%%%"}}, ErrBase64, "PAYMENT-RESPONSE header: not standard base64"},
		{"broken v2 does not fall back", http.Header{"Payment-Response": {enc(`{`)}, "X-Payment-Response": {enc(`{"success":true}`)}}, ErrInvalidJSON, "truncated"},
		{"too large", http.Header{"X-Payment-Response": {strings.Repeat("A", MaxHeaderBytes+1)}}, ErrTooLarge, "X-PAYMENT-RESPONSE header"},
		{"duplicate key", http.Header{"Payment-Response": {enc(`{"success":false,"success":true}`)}}, ErrDuplicateKey, `"success" appears twice`},
		{"sent twice", http.Header{"Payment-Response": {enc(`{"success":true}`), enc(`{"success":false}`)}}, ErrDuplicateKey, "sent 2 times"},
		{"no success", http.Header{"Payment-Response": {enc(`{"transaction":"0x"}`)}}, ErrMalformed, "success is missing"},
		{"string success", http.Header{"Payment-Response": {enc(`{"success":"true"}`)}}, ErrMalformed, "success is a JSON string"},
		{"number transaction", http.Header{"Payment-Response": {enc(`{"success":true,"transaction":12}`)}}, ErrMalformed, "transaction is the JSON number 12"},
		{"object amount", http.Header{"Payment-Response": {enc(`{"success":true,"amount":{}}`)}}, ErrMalformed, "amount is a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSettlement(tc.h)
			if err == nil || s != nil {
				t.Fatalf("got %+v, %v", s, err)
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q; want %v containing %q", err, tc.kind, tc.msg)
			}
		})
	}
}

package x402

import (
	"net/http"
	"testing"
)

func BenchmarkParseResponse(b *testing.B) {
	v := loadVectors(b)
	h := http.Header{"Payment-Required": {v.V2.PaymentRequired.Header}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponse(h, []byte("{}")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponseV1Body(b *testing.B) {
	v := loadVectors(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponse(nil, v.V1.Body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPaymentHeader(b *testing.B) {
	v := loadVectors(b)
	pr, err := ParseResponse(http.Header{"Payment-Required": {v.V2.PaymentRequired.Header}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	auth, sig := testAuth()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := PaymentHeader(pr, &pr.Options[0], auth, sig); err != nil {
			b.Fatal(err)
		}
	}
}

package x402

import (
	"net/http"
	"os"
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

func BenchmarkInputsFromRequired(b *testing.B) {
	data, err := os.ReadFile("testdata/inputs/bazaar-post-required.json")
	if err != nil {
		b.Fatal(err)
	}
	pr, err := ParseResponse(nil, data)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"text":"Hello","target":"fr"}`)
	b.ReportAllocs()
	for b.Loop() {
		in, ok := InputsFromRequired(pr)
		if !ok || len(in.Missing(nil, body)) != 0 {
			b.Fatal("inputs not read")
		}
	}
}

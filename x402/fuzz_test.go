package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
)

// How FuzzParseResponse delivers its document.
const (
	viaHeaderB64 = iota // base64 of doc as PAYMENT-REQUIRED
	viaBody             // doc as the body
	viaHeaderRaw        // doc itself as the PAYMENT-REQUIRED value
	viaCount
)

func fuzzResponse(doc []byte, via uint8) (http.Header, []byte) {
	switch via % viaCount {
	case viaHeaderB64:
		return http.Header{"Payment-Required": {base64.StdEncoding.EncodeToString(doc)}}, nil
	case viaBody:
		return nil, doc
	default:
		return http.Header{"Payment-Required": {string(doc)}}, nil
	}
}

func FuzzParseResponse(f *testing.F) {
	v := loadVectors(f)
	f.Add(b64(f, v.V2.PaymentRequired.Header), uint8(viaHeaderB64))
	f.Add([]byte(v.V2.PaymentRequired.Header), uint8(viaHeaderRaw))
	f.Add([]byte(v.V1.Body), uint8(viaBody))
	f.Add([]byte(v2Doc(option(), option("scheme", `"upto"`), option("network", `"solana"`))), uint8(viaBody))
	f.Add([]byte(v2Doc(option("amount", `"0"`), option("amount", `10000`), option("amount", `"-1"`))), uint8(viaHeaderB64))
	f.Add([]byte(v2Doc(option("payTo", `"`+usdcBaseSepolia+`"`), option("extra", `{"assetTransferMethod":"permit2"}`))), uint8(viaHeaderB64))
	f.Add([]byte(`{"x402Version":1,"accepts":[{"scheme":"exact","Scheme":"upto"}]}`), uint8(viaBody))
	f.Add([]byte(`{"x402Version":2,"accepts":[`+option()+`],"\u0061ccepts":[]}`), uint8(viaBody))
	f.Add([]byte(`{"x402Version":2,"accepts":[`+option()+`],"extensions":`+strings.Repeat(`[`, 40)+strings.Repeat(`]`, 40)+`}`), uint8(viaHeaderB64))
	f.Add([]byte(`{"x402Version":2,"accepts":[`+option("maxTimeoutSeconds", `1e400`)+`]}`), uint8(viaBody))
	f.Add([]byte(`{"x402Version":2,"accepts":[`+option("network", `"eip155:18446744073709551616"`)+`]}`), uint8(viaBody))

	f.Fuzz(func(t *testing.T, doc []byte, via uint8) {
		h, body := fuzzResponse(doc, via)
		pr, err := ParseResponse(h, body)
		if err != nil {
			var we *WireError
			if pr != nil || !errors.As(err, &we) || we.Kind <= 0 || we.Kind >= kindCount {
				t.Fatalf("error %T %v with result %v", err, err, pr)
			}
			return
		}
		if via%viaCount != viaHeaderRaw && !json.Valid(doc) {
			t.Fatalf("accepted a document encoding/json rejects: %q", doc)
		}
		if pr.Version != 1 && pr.Version != 2 || len(pr.Options) == 0 || len(pr.Options) > MaxOptions {
			t.Fatalf("version %d with %d options", pr.Version, len(pr.Options))
		}
		for _, s := range []string{pr.Error, pr.ResourceURL, pr.Description, pr.MimeType} {
			checkDisplay(t, s)
		}
		for i := range pr.Options {
			checkOption(t, pr, &pr.Options[i], i)
		}
	})
}

func checkDisplay(t *testing.T, s string) {
	t.Helper()
	checkDisplayBounded(t, s, maxDisplayBytes)
}

// checkDisplayBounded asserts that s is display-clean and at most limit
// bytes plus the ellipsis that marks a cut.
func checkDisplayBounded(t *testing.T, s string, limit int) {
	t.Helper()
	if len(s) > limit+len("…") || !utf8.ValidString(s) {
		t.Fatalf("display text unbounded or not UTF-8: %d bytes", len(s))
	}
	for _, r := range s {
		if r != utf8.RuneError && unsafeDisplayRune(r) {
			t.Fatalf("display text keeps %U", r)
		}
	}
}

// checkOption asserts the invariants of the package documentation on one
// parsed option, and that a payable one turns into a well-formed header.
func checkOption(t *testing.T, pr *PaymentRequired, o *Option, i int) {
	t.Helper()
	if o.Index != i || !json.Valid(o.Raw) {
		t.Fatalf("option %d: index %d, Raw %q", i, o.Index, o.Raw)
	}
	checkDisplayBounded(t, o.PaymentFlow, maxFlowBytes)
	if !o.Payable() {
		var we *WireError
		if !errors.As(o.Err, &we) || we.Kind < ErrMalformed || we.Kind > ErrBadTimeout {
			t.Fatalf("option %d: error %T %v is not a per-option WireError", i, o.Err, o.Err)
		}
		return
	}
	switch {
	case o.Scheme != "exact", o.AssetTransferMethod != "" && o.AssetTransferMethod != "eip3009":
		t.Fatalf("option %d: payable with scheme %q transfer %q", i, o.Scheme, o.AssetTransferMethod)
	case o.Amount == nil || o.Amount.Sign() <= 0 || o.Amount.Cmp(maxUint256) > 0:
		t.Fatalf("option %d: payable with amount %v", i, o.Amount)
	case o.PayTo == (common.Address{}) || o.Asset == (common.Address{}) || o.PayTo == o.Asset:
		t.Fatalf("option %d: payable with payTo %v asset %v", i, o.PayTo, o.Asset)
	case !strings.HasPrefix(o.CAIP2, "eip155:") || o.ChainID == nil || o.ChainID.Sign() <= 0:
		t.Fatalf("option %d: payable on %q (%v)", i, o.CAIP2, o.ChainID)
	}
	if again, id, err := CAIP2(o.CAIP2); err != nil || again != o.CAIP2 || id.Cmp(o.ChainID) != 0 {
		t.Fatalf("option %d: CAIP2 %q does not normalise to itself", i, o.CAIP2)
	}

	auth, sig := testAuth()
	auth.To, auth.Value = o.PayTo, new(big.Int).Set(o.Amount)
	name, value, err := PaymentHeader(pr, o, auth, sig)
	if err != nil {
		t.Fatalf("option %d: payable but PaymentHeader fails: %v", i, err)
	}
	data, err := base64.StdEncoding.DecodeString(value)
	if err != nil || checkJSON(data, "fuzz") != nil {
		t.Fatalf("option %d: header is not strict JSON: %q", i, data)
	}
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(data, &sent); err != nil {
		t.Fatal(err)
	}
	if pr.Version == 2 {
		if name != HeaderPaymentSignature || !bytes.Equal(sent["accepted"], o.Raw) ||
			!bytes.Equal(sent["resource"], pr.Resource) || !bytes.Equal(sent["extensions"], pr.Extensions) {
			t.Fatalf("option %d: v2 header does not echo verbatim: %s", i, data)
		}
	} else if network, _ := jsonString(sent["network"]); name != HeaderXPayment || network != o.Network {
		t.Fatalf("option %d: v1 header %s network %q", i, name, network)
	}
}

func FuzzParseSettlement(f *testing.F) {
	v := loadVectors(f)
	f.Add(b64(f, v.V2.PaymentResponse.Header), false)
	f.Add([]byte(`{"success":false,"errorReason":"x","amount":1e3}`), true)
	f.Add([]byte(`{"success":true,"Success":false}`), false)
	f.Fuzz(func(t *testing.T, doc []byte, v1 bool) {
		name := "Payment-Response"
		if v1 {
			name = "X-Payment-Response"
		}
		s, err := ParseSettlement(http.Header{name: {base64.StdEncoding.EncodeToString(doc)}})
		if err != nil {
			var we *WireError
			if s != nil || !errors.As(err, &we) {
				t.Fatalf("error %T %v with result %v", err, err, s)
			}
			return
		}
		if s == nil {
			// Only an empty header value reads as absent.
			if strings.TrimSpace(base64.StdEncoding.EncodeToString(doc)) != "" {
				t.Fatalf("no settlement and no error for %q", doc)
			}
			return
		}
		if !json.Valid(s.Raw) || !bytes.Equal(s.Raw, doc) {
			t.Fatalf("Raw %q is not the document", s.Raw)
		}
		for _, str := range []string{s.Transaction, s.Network, s.Payer, s.ErrorReason, s.ErrorMessage, s.Amount} {
			checkDisplay(t, str)
		}
	})
}

func FuzzCAIP2(f *testing.F) {
	for _, s := range []string{"base", "eip155:8453", "eip155:0", "eip155:01", "solana", "eip155:18446744073709551615", "EIP155:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, network string) {
		caip2, id, err := CAIP2(network)
		if err != nil {
			if caip2 != "" || id != nil || !errors.Is(err, ErrUnsupportedNetwork) {
				t.Fatalf("CAIP2(%q) = %q, %v, %v", network, caip2, id, err)
			}
			return
		}
		if id.Sign() <= 0 || caip2 != "eip155:"+id.String() {
			t.Fatalf("CAIP2(%q) = %q, %v", network, caip2, id)
		}
		if name, ok := V1Name(caip2); ok {
			if back, _, err := CAIP2(name); err != nil || back != caip2 {
				t.Fatalf("V1Name(%q) = %q does not map back", caip2, name)
			}
		}
	})
}

func FuzzParseInputs(f *testing.F) {
	for _, data := range goldenInputs(f) {
		top := objectFields(data)
		bazaar := objectFields(objectFields(top["extensions"])["bazaar"])
		if input := objectFields(bazaar["info"])["input"]; input != nil {
			f.Add([]byte(input), []byte(bazaar["schema"]), []byte(`{"query":"x"}`), "city=Paris")
			f.Add([]byte(input), []byte(nil), []byte(``), "")
		}
		var accepts []json.RawMessage
		_ = json.Unmarshal(top["accepts"], &accepts)
		for _, o := range accepts {
			if input := objectFields(objectFields(o)["outputSchema"])["input"]; input != nil {
				f.Add([]byte(input), []byte(nil), []byte(`{"text":1}`), "lang=en")
			}
		}
	}
	f.Add([]byte(`{"type":"http","queryParams":["city"]}`), []byte(`{"properties":{"input":{"properties":{"queryParams":{"required":"city"}}}}}`), []byte(`[]`), "a=1")
	f.Add([]byte(`{"type":"http","bodyType":"json","bodyFields":{"a\u0000":{"required":true},"b":{"required":true}}}`), []byte(nil), []byte(`{"B":1}`), "")
	f.Add([]byte(`{"type":"mcp","toolName":"t","inputSchema":{"properties":{"x":{"type":["a","b"]}},"required":["x",1]}}`), []byte(`{}`), []byte(``), "")

	f.Fuzz(func(t *testing.T, input, schema, body []byte, rawQuery string) {
		in, ok := ParseInputs(input, schema)
		if !ok {
			if !reflect.DeepEqual(in, Inputs{}) {
				t.Fatalf("not ok but %+v", in)
			}
			return
		}
		if len(input) > MaxInputBytes || !json.Valid(input) {
			t.Fatalf("accepted %d bytes of input that is oversized or not JSON", len(input))
		}
		switch {
		case in.Type != "" && in.Type != InputTypeHTTP && in.Type != InputTypeMCP,
			in.BodyType != "" && in.BodyType != BodyTypeJSON && in.BodyType != BodyTypeFormData && in.BodyType != BodyTypeText,
			len(in.Method) > maxMethodBytes || strings.ToUpper(in.Method) != in.Method || strings.ContainsFunc(in.Method, func(r rune) bool { return r < 'A' || r > 'Z' }),
			in.ToolName != "" && !validName(in.ToolName):
			t.Fatalf("type %q, body type %q, method %q, tool %q", in.Type, in.BodyType, in.Method, in.ToolName)
		}
		checkDisplayBounded(t, in.BodyExample, maxBodyExampleBytes)
		// Without the word anywhere (and no escapes that could spell it),
		// nothing can have been declared required.
		noRequired := !bytes.Contains(input, []byte("required")) && !bytes.Contains(schema, []byte("required")) &&
			!bytes.Contains(input, []byte(`\`)) && !bytes.Contains(schema, []byte(`\`))
		required := 0
		for _, list := range [][]Field{in.Query, in.Body, in.Headers} {
			if len(list) > MaxInputFields {
				t.Fatalf("%d fields in one list", len(list))
			}
			for i, fl := range list {
				if !validName(fl.Name) {
					t.Fatalf("field name %q", fl.Name)
				}
				if i > 0 && (!list[i-1].Required && fl.Required || list[i-1].Required == fl.Required && list[i-1].Name >= fl.Name) {
					t.Fatalf("fields out of order: %q then %q", list[i-1].Name, fl.Name)
				}
				if fl.Required {
					if noRequired {
						t.Fatalf("field %q required though nothing says so", fl.Name)
					}
					required++
				}
				checkDisplayBounded(t, fl.Type, maxInputTypeBytes)
				checkDisplayBounded(t, fl.Description, maxInputDescBytes)
				checkDisplayBounded(t, fl.Example, maxInputExampleBytes)
			}
		}
		query, _ := url.ParseQuery(rawQuery)
		missing := in.Missing(query, body)
		if len(missing) > required || in.Type != InputTypeHTTP && len(missing) > 0 {
			t.Fatalf("Missing = %q with %d required fields, type %q", missing, required, in.Type)
		}
		for _, m := range missing {
			if !strings.HasPrefix(m, `query parameter "`) && !strings.HasPrefix(m, `body field "`) {
				t.Fatalf("Missing returned %q", m)
			}
		}
	})
}

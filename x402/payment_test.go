package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// testAuth is a well-formed authorization for option() and its signature.
func testAuth() (Authorization, []byte) {
	a := Authorization{
		From:        common.HexToAddress("0x857b06519E91e3A54538791bDbb0E22373e36b66"),
		To:          common.HexToAddress(payee),
		Value:       big.NewInt(10000),
		ValidAfter:  big.NewInt(0),
		ValidBefore: big.NewInt(1740672154),
	}
	a.Nonce[0], a.Nonce[31] = 0xab, 0x01
	sig := bytes.Repeat([]byte{0x11}, SignatureLength)
	sig[64] = 27
	return a, sig
}

func decodePayment(t *testing.T, value string) map[string]json.RawMessage {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkJSON(data, "test"); err != nil {
		t.Fatalf("payment header is not strict JSON: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPaymentHeaderEchoesVerbatim(t *testing.T) {
	// Whitespace, key order and unknown members inside the option, resource
	// and extensions must all survive: the server compares by deep equality.
	opt := `{ "network":"eip155:84532","scheme":"exact", "amount":"10000","asset":"` + usdcBaseSepolia +
		`","payTo":"` + strings.ToLower(payee) + `","maxTimeoutSeconds":60,"extra":{"version":"2","name":"USDC","x":[1,2]},"future":null}`
	doc := `{"x402Version":2,"accepts":[` + option("scheme", `"upto"`) + `,` + opt +
		`],"resource":{"url":"https://a.example/x","z":1},"extensions":{"bazaar":{"info":{"input":{"type":"http"}}}}}`
	pr, err := ParseResponse(headerWith(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	auth, sig := testAuth()
	name, value, err := PaymentHeader(pr, &pr.Options[1], auth, sig)
	if err != nil {
		t.Fatal(err)
	}
	if name != HeaderPaymentSignature {
		t.Errorf("name %q", name)
	}
	m := decodePayment(t, value)
	if string(m["accepted"]) != opt || string(m["resource"]) != `{"url":"https://a.example/x","z":1}` ||
		string(m["extensions"]) != `{"bazaar":{"info":{"input":{"type":"http"}}}}` || string(m["x402Version"]) != "2" {
		t.Errorf("not echoed verbatim: %s", m)
	}
	raw, _ := base64.StdEncoding.DecodeString(value)
	wantPayload := `"payload":{"signature":"0x` + strings.Repeat("11", 64) + `1b","authorization":{"from":"0x857b06519E91e3A54538791bDbb0E22373e36b66","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","value":"10000","validAfter":"0","validBefore":"1740672154","nonce":"0xab` + strings.Repeat("00", 30) + `01"}}`
	if !bytes.Contains(raw, []byte(wantPayload)) {
		t.Errorf("payload\n got %s\nwant %s", raw, wantPayload)
	}
	if !strings.HasSuffix(string(raw), `}},"extensions":{"bazaar":{"info":{"input":{"type":"http"}}}}}`) {
		t.Errorf("extensions not last: %s", raw)
	}

	payload, err := PaymentPayload(pr, &pr.Options[1], auth, sig)
	if err != nil || base64.StdEncoding.EncodeToString(payload) != value {
		t.Errorf("PaymentPayload is not the header before base64: %v", err)
	}
}

func TestPaymentHeaderOmitsAbsentParts(t *testing.T) {
	pr, err := ParseResponse(nil, []byte(`{"x402Version":2,"accepts":[`+option()+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	auth, sig := testAuth()
	_, value, err := PaymentHeader(pr, &pr.Options[0], auth, sig)
	if err != nil {
		t.Fatal(err)
	}
	m := decodePayment(t, value)
	if _, ok := m["resource"]; ok {
		t.Error("resource sent though the 402 had none")
	}
	if _, ok := m["extensions"]; ok {
		t.Error("extensions sent though the 402 had none")
	}
}

func TestPaymentHeaderV1(t *testing.T) {
	pr, err := ParseResponse(nil, []byte(`{"x402Version":1,"accepts":[`+
		option("amount", drop, "maxAmountRequired", `"10000"`, "network", `"eip155:84532"`)+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	auth, sig := testAuth()
	name, value, err := PaymentHeader(pr, &pr.Options[0], auth, sig)
	if err != nil {
		t.Fatal(err)
	}
	m := decodePayment(t, value)
	if name != HeaderXPayment || string(m["network"]) != `"eip155:84532"` || string(m["scheme"]) != `"exact"` {
		t.Errorf("%s: %s", name, m)
	}
	if len(m) != 4 {
		t.Errorf("v1 payload has members %v; want x402Version, scheme, network, payload", m)
	}
}

func TestPaymentHeaderErrors(t *testing.T) {
	good := func() (*PaymentRequired, Authorization, []byte) {
		pr, err := ParseResponse(headerWith(v2Doc(option(), option("scheme", `"upto"`))), nil)
		if err != nil {
			t.Fatal(err)
		}
		a, s := testAuth()
		return pr, a, s
	}
	tests := []struct {
		name   string
		mutate func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte)
		kind   ErrorKind
		msg    string
	}{
		{"unpayable option", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { *o = &pr.Options[1] },
			ErrNotPayable, `payment header: option 1 is not payable: scheme "upto" is not supported`},
		{"nil option", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { *o = nil }, ErrNotPayable, "no option"},
		{"foreign option", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) {
			other := parseOption(0, json.RawMessage(option("amount", `"1"`)), 2)
			*o = &other
		}, ErrNotPayable, "not one of this 402's options"},
		{"index out of range", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) {
			c := **o
			c.Index = 7
			*o = &c
		}, ErrNotPayable, "not one of this 402's options"},
		{"raw changed to repeat a key", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) {
			raw := json.RawMessage(strings.Replace(option(), `"amount":"10000"`, `"amount":"10000","amount":"1"`, 1))
			pr.Options[0].Raw = raw
			(*o).Raw = raw
		}, ErrNotPayable, "not strict JSON any more"},
		{"bad version", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { pr.Version = 3 }, ErrVersion, "not 1 or 2"},
		{"corrupted resource", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) {
			pr.Resource = json.RawMessage(`{`)
		}, ErrNotPayable, "not valid JSON"},
		{"fields changed after parsing", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) {
			// Raw still says 10000 to the original payee; a mutated Option
			// must not make a mismatched payment header.
			(*o).Amount = big.NewInt(1)
			a.Value = big.NewInt(1)
		}, ErrBadAuthorization, "value must equal the option's amount 10000"},
		{"wrong payee", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) {
			a.To = common.HexToAddress("0x01")
		}, ErrBadAuthorization, "but the option pays 0x209693Bc6afc0C5328bA36FaF03C514EF312287C"},
		{"zero from", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { a.From = common.Address{} }, ErrBadAuthorization, "is from the zero address"},
		{"nil value", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { a.Value = nil }, ErrBadAuthorization, "value must be set"},
		{"more than asked", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { a.Value = big.NewInt(10001) }, ErrBadAuthorization, "exactly"},
		{"nil validAfter", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { a.ValidAfter = nil }, ErrBadAuthorization, "validAfter"},
		{"negative validAfter", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { a.ValidAfter = big.NewInt(-1) }, ErrBadAuthorization, "validAfter"},
		{"huge validBefore", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) {
			a.ValidBefore = new(big.Int).Lsh(big.NewInt(1), 256)
		}, ErrBadAuthorization, "validBefore must be set and fit"},
		{"empty window", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { a.ValidBefore = big.NewInt(0) }, ErrBadAuthorization, "window is empty"},
		{"zero nonce", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { a.Nonce = [32]byte{} }, ErrBadAuthorization, "nonce is all zeros"},
		{"short signature", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { *sig = (*sig)[:64] }, ErrBadAuthorization, "64 bytes"},
		{"v of 0", func(pr *PaymentRequired, o **Option, a *Authorization, sig *[]byte) { (*sig)[64] = 0 }, ErrBadAuthorization, "add 27"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, auth, sig := good()
			opt := &pr.Options[0]
			tc.mutate(pr, &opt, &auth, &sig)
			name, value, err := PaymentHeader(pr, opt, auth, sig)
			if err == nil || name != "" || value != "" {
				t.Fatalf("got %q %q %v", name, value, err)
			}
			var we *WireError
			if !errors.Is(err, tc.kind) || !errors.As(err, &we) || we.Where != "payment header" {
				t.Errorf("error %v is not a payment-header %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err, tc.msg)
			}
		})
	}
	// The cause of an unpayable option stays reachable.
	pr, auth, sig := good()
	_, _, err := PaymentHeader(pr, &pr.Options[1], auth, sig)
	if !errors.Is(err, ErrUnsupportedScheme) {
		t.Errorf("%v does not wrap the option's ErrUnsupportedScheme", err)
	}
}

// TestAuthorizationCheck: the one set of rules every authorization obeys,
// field by field.
func TestAuthorizationCheck(t *testing.T) {
	good := Authorization{From: common.HexToAddress("0x01"), To: common.HexToAddress("0x02"), Value: big.NewInt(1),
		ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(10), Nonce: [32]byte{1}}
	if err := good.Check(); err != nil {
		t.Fatalf("good authorization: %v", err)
	}
	huge := new(big.Int).Lsh(big.NewInt(1), 256)
	for field, mutate := range map[string]func(*Authorization){
		"from":        func(a *Authorization) { a.From = common.Address{} },
		"to":          func(a *Authorization) { a.To = common.Address{} },
		"value":       func(a *Authorization) { a.Value = huge },
		"validAfter":  func(a *Authorization) { a.ValidAfter = big.NewInt(-1) },
		"validBefore": func(a *Authorization) { a.ValidBefore = big.NewInt(0) },
		"nonce":       func(a *Authorization) { a.Nonce = [32]byte{} },
	} {
		a := good
		mutate(&a)
		var ae *AuthorizationError
		if err := a.Check(); !errors.As(err, &ae) || ae.Field != field {
			t.Errorf("%s: err = %v", field, err)
		}
	}
	seen := map[[32]byte]bool{}
	for range 100 {
		n, err := NewNonce()
		if err != nil || n == ([32]byte{}) || seen[n] {
			t.Fatalf("NewNonce: %x, %v", n, err)
		}
		seen[n] = true
	}
}

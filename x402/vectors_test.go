package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// The known-answer vectors come from the x402 specifications. The testdata
// copy keeps the package self-contained; the shared original, when present
// beside the repository, is checked against it so the two cannot drift.
const (
	vectorsFile       = "testdata/headers.json"
	sharedVectorsFile = "../../shared/vectors/headers.json"
)

type headerVector struct {
	Header  string          `json:"header"`
	Decoded json.RawMessage `json:"decoded"`
}

type vectors struct {
	V2 struct {
		PaymentRequired  headerVector `json:"PAYMENT-REQUIRED"`
		PaymentSignature headerVector `json:"PAYMENT-SIGNATURE"`
		PaymentResponse  headerVector `json:"PAYMENT-RESPONSE"`
	} `json:"v2"`
	V1 struct {
		Body     json.RawMessage `json:"402-body"`
		XPayment headerVector    `json:"X-PAYMENT"`
	} `json:"v1"`
}

func readVectorsFile(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		data, err = os.ReadFile(sharedVectorsFile)
	}
	if err != nil {
		t.Fatalf("no test vectors: %v", err)
	}
	return data
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	var v vectors
	if err := json.Unmarshal(readVectorsFile(t), &v); err != nil {
		t.Fatalf("vectors: %v", err)
	}
	return &v
}

func TestVectorsCopyMatchesShared(t *testing.T) {
	shared, err := os.ReadFile(sharedVectorsFile)
	if err != nil {
		t.Skipf("shared vectors not beside the repository (%v); using %s only", err, vectorsFile)
	}
	local, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, local) {
		abs, _ := filepath.Abs(sharedVectorsFile)
		t.Fatalf("%s differs from %s; copy the shared file over it", vectorsFile, abs)
	}
}

func compact(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	d, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGoldenPaymentRequiredHeader(t *testing.T) {
	v := loadVectors(t)
	h := http.Header{}
	h.Set("Payment-Required", v.V2.PaymentRequired.Header)
	pr, err := ParseResponse(h, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Error    string          `json:"error"`
		Resource json.RawMessage `json:"resource"`
		Accepts  []json.RawMessage
	}
	if err := json.Unmarshal(v.V2.PaymentRequired.Decoded, &want); err != nil {
		t.Fatal(err)
	}
	decodedHeader := b64(t, v.V2.PaymentRequired.Header)

	if pr.Version != 2 || pr.Source != SourceHeader || pr.Error != want.Error {
		t.Errorf("version %d source %q error %q", pr.Version, pr.Source, pr.Error)
	}
	if !bytes.Equal(pr.Resource, compact(t, want.Resource)) || !bytes.Contains(decodedHeader, pr.Resource) {
		t.Errorf("resource %s", pr.Resource)
	}
	if pr.Extensions != nil {
		t.Errorf("extensions %s, want nil", pr.Extensions)
	}
	if pr.ResourceURL != "https://api.example.com/premium-data" ||
		pr.Description != "Access to premium market data" || pr.MimeType != "application/json" {
		t.Errorf("display fields %q %q %q", pr.ResourceURL, pr.Description, pr.MimeType)
	}
	if len(pr.Options) != 1 {
		t.Fatalf("%d options", len(pr.Options))
	}
	o := pr.Options[0]
	wantRaw := compact(t, want.Accepts[0])
	if !bytes.Equal(o.Raw, wantRaw) || !bytes.Contains(decodedHeader, []byte(`"accepts":[`+string(wantRaw)+`]`)) {
		t.Errorf("Raw = %s\nwant the option's bytes as in the header: %s", o.Raw, wantRaw)
	}
	checkUSDCOption(t, &o, "eip155:84532")
}

// checkUSDCOption checks the one option both examples offer.
func checkUSDCOption(t *testing.T, o *Option, network string) {
	t.Helper()
	if !o.Payable() {
		t.Fatalf("option not payable: %v", o.Err)
	}
	if o.Index != 0 || o.Scheme != "exact" || o.Network != network || o.CAIP2 != "eip155:84532" ||
		o.ChainID.Cmp(big.NewInt(84532)) != 0 || o.Amount.Cmp(big.NewInt(10000)) != 0 ||
		o.Asset != common.HexToAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e") ||
		o.PayTo != common.HexToAddress("0x209693Bc6afc0C5328bA36FaF03C514EF312287C") ||
		o.MaxTimeoutSeconds != 60 || o.ExtraName != "USDC" || o.ExtraVersion != "2" || o.AssetTransferMethod != "" {
		t.Errorf("option = %+v", o)
	}
}

func TestGoldenV1Body(t *testing.T) {
	v := loadVectors(t)
	pr, err := ParseResponse(http.Header{}, v.V1.Body)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Version != 1 || pr.Source != SourceBodyV1 || pr.Error != "X-PAYMENT header is required" {
		t.Errorf("version %d source %q error %q", pr.Version, pr.Source, pr.Error)
	}
	if pr.Resource != nil || pr.Extensions != nil {
		t.Errorf("v1 resource %s extensions %s, want nil", pr.Resource, pr.Extensions)
	}
	if pr.ResourceURL != "https://api.example.com/premium-data" ||
		pr.Description != "Access to premium market data" || pr.MimeType != "application/json" {
		t.Errorf("display fields %q %q %q", pr.ResourceURL, pr.Description, pr.MimeType)
	}
	if len(pr.Options) != 1 {
		t.Fatalf("%d options", len(pr.Options))
	}
	o := pr.Options[0]
	checkUSDCOption(t, &o, "base-sepolia")
	if !bytes.Contains(v.V1.Body, o.Raw) || !json.Valid(o.Raw) {
		t.Errorf("Raw is not the option's bytes as received: %s", o.Raw)
	}
}

// vectorAuth reads the authorization and signature out of a decoded payment
// header vector.
func vectorAuth(t *testing.T, decoded json.RawMessage) (Authorization, []byte) {
	t.Helper()
	var p struct {
		Payload struct {
			Signature     string
			Authorization struct{ From, To, Value, ValidAfter, ValidBefore, Nonce string }
		}
	}
	if err := json.Unmarshal(decoded, &p); err != nil {
		t.Fatal(err)
	}
	a := p.Payload.Authorization
	num := func(s string) *big.Int {
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			t.Fatalf("bad number %q", s)
		}
		return n
	}
	auth := Authorization{
		From: common.HexToAddress(a.From), To: common.HexToAddress(a.To),
		Value: num(a.Value), ValidAfter: num(a.ValidAfter), ValidBefore: num(a.ValidBefore),
	}
	nonce, err := hex.DecodeString(strings.TrimPrefix(a.Nonce, "0x"))
	if err != nil || len(nonce) != 32 {
		t.Fatalf("nonce %q: %v", a.Nonce, err)
	}
	copy(auth.Nonce[:], nonce)
	sig, err := hex.DecodeString(strings.TrimPrefix(p.Payload.Signature, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return auth, sig
}

func TestGoldenPaymentSignatureHeader(t *testing.T) {
	v := loadVectors(t)
	var parts struct {
		Resource json.RawMessage
		Accepted json.RawMessage
	}
	if err := json.Unmarshal(v.V2.PaymentSignature.Decoded, &parts); err != nil {
		t.Fatal(err)
	}
	// Build the PaymentRequired from the decoded parts, the way ParseResponse
	// would have from a server that sent them compactly.
	raw := compact(t, parts.Accepted)
	pr := &PaymentRequired{Version: 2, Resource: compact(t, parts.Resource), Source: SourceHeader}
	pr.Options = []Option{parseOption(0, raw, 2)}
	auth, sig := vectorAuth(t, v.V2.PaymentSignature.Decoded)

	name, value, err := PaymentHeader(pr, &pr.Options[0], auth, sig)
	if err != nil {
		t.Fatal(err)
	}
	if name != "PAYMENT-SIGNATURE" {
		t.Errorf("name %q", name)
	}
	if value != v.V2.PaymentSignature.Header {
		t.Errorf("header differs\n got %s\nwant %s\n got JSON %s", value, v.V2.PaymentSignature.Header, b64(t, value))
	}

	// The same header from the parsed PAYMENT-REQUIRED example, which offers
	// exactly this option for this resource.
	h := http.Header{"Payment-Required": {v.V2.PaymentRequired.Header}}
	parsed, err := ParseResponse(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, value, err = PaymentHeader(parsed, &parsed.Options[0], auth, sig); err != nil || value != v.V2.PaymentSignature.Header {
		t.Errorf("from the parsed 402: err %v, header %s", err, b64(t, value))
	}
}

func TestGoldenXPaymentHeader(t *testing.T) {
	v := loadVectors(t)
	pr, err := ParseResponse(nil, v.V1.Body)
	if err != nil {
		t.Fatal(err)
	}
	auth, sig := vectorAuth(t, v.V1.XPayment.Decoded)
	name, value, err := PaymentHeader(pr, &pr.Options[0], auth, sig)
	if err != nil {
		t.Fatal(err)
	}
	if name != "X-PAYMENT" {
		t.Errorf("name %q", name)
	}
	if value != v.V1.XPayment.Header {
		t.Errorf("header differs\n got %s\nwant %s\n got JSON %s", value, v.V1.XPayment.Header, b64(t, value))
	}
	// And the decoded JSON must equal the vector's decoded form, compacted.
	if got, want := b64(t, value), compact(t, v.V1.XPayment.Decoded); !bytes.Equal(got, want) {
		t.Errorf("JSON differs\n got %s\nwant %s", got, want)
	}
}

func TestGoldenPaymentResponse(t *testing.T) {
	v := loadVectors(t)
	h := http.Header{}
	h.Set("PAYMENT-RESPONSE", v.V2.PaymentResponse.Header)
	s, err := ParseSettlement(h)
	if err != nil {
		t.Fatal(err)
	}
	want := Settlement{
		Success:     true,
		Transaction: "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
		Network:     "eip155:84532",
		Payer:       "0x857b06519E91e3A54538791bDbb0E22373e36b66",
	}
	if s.Success != want.Success || s.Transaction != want.Transaction || s.Network != want.Network ||
		s.Payer != want.Payer || s.ErrorReason != "" || s.ErrorMessage != "" || s.Amount != "" {
		t.Errorf("settlement = %+v", s)
	}
	if !bytes.Equal(s.Raw, b64(t, v.V2.PaymentResponse.Header)) {
		t.Errorf("Raw = %s", s.Raw)
	}
	if !bytes.Equal(s.Raw, compact(t, v.V2.PaymentResponse.Decoded)) {
		t.Errorf("Raw differs from the decoded vector")
	}
}

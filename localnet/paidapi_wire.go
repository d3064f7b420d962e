package localnet

// The wire side of the paid API: the payment options it offers and the 402
// answers that carry them, v1 and v2.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// --- options ------------------------------------------------------------

type tokenDomain struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// v2Option and v1Option list their fields in the order of the
// specifications' examples, so an unmodified 402 is byte-for-byte what a
// reference server would send.
type v2Option struct {
	Scheme            string      `json:"scheme"`
	Network           string      `json:"network"`
	Amount            string      `json:"amount"`
	Asset             string      `json:"asset"`
	PayTo             string      `json:"payTo"`
	MaxTimeoutSeconds int         `json:"maxTimeoutSeconds"`
	Extra             tokenDomain `json:"extra"`
}

type v1Option struct {
	Scheme            string      `json:"scheme"`
	Network           string      `json:"network"`
	MaxAmountRequired string      `json:"maxAmountRequired"`
	Resource          string      `json:"resource"`
	Description       string      `json:"description"`
	MimeType          string      `json:"mimeType"`
	PayTo             string      `json:"payTo"`
	MaxTimeoutSeconds int         `json:"maxTimeoutSeconds"`
	Asset             string      `json:"asset"`
	OutputSchema      any         `json:"outputSchema"`
	Extra             tokenDomain `json:"extra"`
}

// options builds the payment options of rt for the resource at url, passed
// through rt.Accepts when set.
func (p *PaidAPI) options(rt *Route, url string) ([]json.RawMessage, error) {
	timeout := rt.MaxTimeoutSeconds
	if timeout == 0 {
		timeout = defaultMaxTimeoutSeconds
	}
	domain := tokenDomain{Name: p.chain.TokenName(), Version: p.chain.TokenVersion()}
	var opt any
	if rt.Version == 1 {
		// v1 options carry the CAIP-2 id rather than V1NetworkName: a v1
		// client maps short names through a fixed table that cannot know a
		// local chain, while eip155:<id> needs no table.
		v1 := v1Option{
			Scheme: "exact", Network: p.chain.Network(), MaxAmountRequired: rt.Price.String(),
			Resource: url, Description: rt.Description, MimeType: rt.MimeType,
			PayTo: p.payTo.Hex(), MaxTimeoutSeconds: timeout, Asset: p.chain.TokenAddress().Hex(),
			Extra: domain,
		}
		if len(rt.OutputSchema) > 0 {
			v1.OutputSchema = rt.OutputSchema
		}
		opt = v1
	} else {
		opt = v2Option{
			Scheme: "exact", Network: p.chain.Network(), Amount: rt.Price.String(),
			Asset: p.chain.TokenAddress().Hex(), PayTo: p.payTo.Hex(), MaxTimeoutSeconds: timeout,
			Extra: domain,
		}
	}
	raw, err := marshalJSON(opt)
	if err != nil {
		return nil, err
	}
	if rt.Accepts == nil {
		return []json.RawMessage{raw}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	rewritten := rt.Accepts([]map[string]any{m})
	out := make([]json.RawMessage, 0, len(rewritten))
	for _, o := range rewritten {
		b, err := marshalJSON(o)
		if err != nil {
			return nil, fmt.Errorf("localnet: route %s %s: encoding rewritten option: %w", rt.Method, rt.Path, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// requestURL is the absolute URL of the request as the client addressed it,
// query included: the resource a payment is for.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// --- 402 answers --------------------------------------------------------

type resourceInfo struct {
	URL         string `json:"url"`
	Description string `json:"description"`
	MimeType    string `json:"mimeType"`
}

type bazaarExtension struct {
	Info   json.RawMessage `json:"info"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

type v2Extensions struct {
	Bazaar            *bazaarExtension            `json:"bazaar,omitempty"`
	PaymentIdentifier *paymentIdentifierExtension `json:"payment-identifier,omitempty"`
}

type v2PaymentRequired struct {
	X402Version int               `json:"x402Version"`
	Error       string            `json:"error,omitempty"`
	Resource    resourceInfo      `json:"resource"`
	Accepts     []json.RawMessage `json:"accepts"`
	Extensions  *v2Extensions     `json:"extensions,omitempty"`
}

type v1PaymentRequired struct {
	X402Version int               `json:"x402Version"`
	Error       string            `json:"error"`
	Accepts     []json.RawMessage `json:"accepts"`
	Payer       string            `json:"payer,omitempty"`
}

// requireV2 answers 402 the v2 way: the details in PAYMENT-REQUIRED, an
// empty JSON object as body.
func (p *PaidAPI) requireV2(w http.ResponseWriter, rt *Route, url string, opts []json.RawMessage, msg string) {
	pr := v2PaymentRequired{
		X402Version: 2,
		Error:       msg,
		Resource:    resourceInfo{URL: url, Description: rt.Description, MimeType: rt.MimeType},
		Accepts:     opts,
	}
	if len(rt.Bazaar) > 0 || rt.PaymentIdentifier != nil {
		pr.Extensions = &v2Extensions{}
	}
	if len(rt.Bazaar) > 0 {
		pr.Extensions.Bazaar = &bazaarExtension{Info: rt.Bazaar, Schema: rt.BazaarSchema}
	}
	if rt.PaymentIdentifier != nil {
		pr.Extensions.PaymentIdentifier = advertisePaymentIdentifier(rt.PaymentIdentifier)
	}
	data, err := marshalJSON(pr)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorResponse{Error: err.Error()})
		return
	}
	w.Header().Set(headerPaymentRequired, base64.StdEncoding.EncodeToString(data))
	writeJSON(w, http.StatusPaymentRequired, struct{}{})
}

// requireV1 answers 402 the v1 way: the details in the JSON body.
func requireV1(w http.ResponseWriter, opts []json.RawMessage, msg, payer string) {
	writeJSON(w, http.StatusPaymentRequired, v1PaymentRequired{X402Version: 1, Error: msg, Accepts: opts, Payer: payer})
}

// paymentHeader returns the decoded JSON of the named payment header.
// present is false when the request has none.
func paymentHeader(r *http.Request, name string) (data []byte, present bool, err error) {
	values := r.Header.Values(name)
	switch {
	case len(values) == 0:
		return nil, false, nil
	case len(values) > 1:
		// Which copy a stack keeps differs; refusing is the only answer
		// every party agrees on.
		return nil, true, fmt.Errorf("%s header sent %d times", name, len(values))
	}
	v := strings.TrimSpace(values[0])
	if len(v) > maxPaymentHeaderBytes {
		return nil, true, fmt.Errorf("%s header exceeds %d bytes", name, maxPaymentHeaderBytes)
	}
	data, err = base64.StdEncoding.DecodeString(v)
	if err != nil {
		// Unpadded standard base64 decodes to the same bytes; accept it as
		// the reference servers' lenient decoders do.
		if data, err = base64.RawStdEncoding.DecodeString(v); err != nil {
			return nil, true, fmt.Errorf("%s header is not base64", name)
		}
	}
	if err := checkJSON(data); err != nil {
		return nil, true, fmt.Errorf("%s header: %v", name, err)
	}
	return data, true, nil
}

// Package x402 is the payer's side of the x402 wire format: it reads the
// payment requirements of an HTTP 402 response, writes the payment header of
// the paid retry, and reads the settlement header of the answer. It speaks
// both protocol versions (v1 body and X-PAYMENT, v2 PAYMENT-REQUIRED and
// PAYMENT-SIGNATURE). It also reads what a 402 (or a discovery listing) says
// the request needs — the bazaar extension's input and schema in v2, an
// option's outputSchema in v1 — so that an agent sees it before paying and
// a caller can refuse to pay for a request that visibly lacks a required
// query parameter or JSON body field (Inputs.Missing).
//
// Nothing here signs, holds keys, decides whether a price is acceptable or
// talks to the network; those belong to the callers. This package only makes
// sure that what they decide on is exactly what the server sent and that what
// they send back is exactly what the server will recognise.
//
// Invariants:
//
//   - Every input is bounded before it is parsed: MaxHeaderBytes per header
//     value, MaxBodyBytes per body, MaxDepth levels of JSON nesting and
//     MaxOptions entries in accepts. Over a bound is an error, never a
//     truncation.
//   - A document is accepted only if it is one well-formed UTF-8 JSON object
//     in which no object repeats a key, where keys that differ only in letter
//     case also count as repeats. Parsers disagree on repeated keys (first
//     wins, last wins, or case-insensitive matching as in encoding/json), so
//     a document that means different things to different parsers is refused
//     rather than read one way.
//   - A 402 is parsed once into typed values; the policy check and the signer
//     both read those values, never the JSON again.
//   - An Option with a nil Err has every field a signer needs, validated: the
//     scheme is "exact" with an EIP-3009 transfer, the network is EVM with a
//     CAIP-2 id and chain id, the amount is a positive integer below 2^256,
//     asset and payTo are non-zero, distinct addresses, and the timeout is a
//     non-negative integer. An Option with a non-nil Err must not be paid; its
//     other fields are best effort, for display only.
//   - Option.Raw holds the option's bytes exactly as received, and the v2
//     payment header echoes them, resource and extensions byte for byte:
//     a v2 server matches the chosen option by deep equality.
//   - PaymentHeader never pairs an option with an authorization for a
//     different payee or amount: it re-reads both from Option.Raw, the bytes
//     it is about to echo, rather than trusting the Option's mutable fields.
//   - Every error of ParseResponse, ParseSettlement and PaymentHeader, and
//     every Option.Err, is a *WireError whose Kind is matched with errors.Is;
//     CAIP2 returns an *UnsupportedNetworkError, which matches
//     ErrUnsupportedNetwork. Untrusted text inside an error message is
//     truncated and quoted, and text kept for display is bounded and
//     cleaned by Display.
//   - Display is x402-mcp's one cleaner for text another party wrote,
//     whoever shows it (pay, tools, catalog, the CLI): its output is valid
//     UTF-8 on one line, with no control, format (bidi, zero-width) or
//     separator character, within its bound plus "…". FuzzDisplay holds it
//     to that.
//   - Inputs are display data, bounded per field and per list, except their
//     Required flags, whose only use is Missing: a reason to refuse a
//     payment, never to make one. Missing reports only what is plainly
//     absent; a body, type or schema it cannot read is never a reason.
package x402

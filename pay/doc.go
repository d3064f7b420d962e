// Package pay is the one code path in x402-mcp that spends money.
//
// A call goes: request → 402 → choose an option → policy check → sign →
// retry once → read the settlement → return.
//
// The verdict on paying (free, allowed, needs_approval, denied,
// unpayable) is computed in one place, judge, from the chosen option's
// policy verdict and the budgets; Quote reports it, JudgeListing gives it
// for listed options, and Fetch acts on it. No other package judges a price.
//
// Invariants:
//   - At most one signature per call, with one exception below. A 402 that
//     answers the paid retry is reported as a failed or ambiguous payment
//     and never paid again.
//   - Paying on the first request (known.go, Config.KnownTerms): terms seen
//     for the same method and URL within the TTL are judged by the same
//     functions as a fresh 402, and paid with the first request only when
//     the verdict is "allowed" (never when a human must approve), and never
//     for a host with a payment of unknown outcome. If the server answers
//     402 on the very terms signed, the same authorization is re-sent
//     once, never a new one. If it answers 402 on other terms, the first
//     payment stays counted as unknown until the chain proves it unused,
//     and the new terms get a fresh decision and one paid attempt: the one
//     case where a call signs twice, both counted against every budget.
//   - Nothing is signed unless the policy issued a permit for exactly the
//     authorization being signed, against the ledger's reservation of it
//     (see packages policy and ledger). On the paid path that is one
//     ledger write transaction (ledger.RecordSent): every budget checked,
//     the record inserted as sent, then the permit, the signature and the
//     header made inside it and stored with the record. The header leaves
//     only after that commit returned; if it fails, the signature is
//     dropped unsent.
//   - The budgets are not read before that transaction on a paid fetch
//     (it checks them itself, and a full one refuses in the same words a
//     quote would use), except to ask a human: a payment that needs
//     approval is checked against the budgets before anyone is asked.
//   - The settlement (and the delivery) is recorded off the reply path
//     (ledger.SettleLater): the payment already counts as sent, a crash
//     before that write leaves it sent for the reconciler, and the
//     ledger's reads and Close wait for it (Client.Flush too).
//   - Only registry tokens are payable; decimals and the EIP-712 domain come
//     from the registry. An option whose `extra` disagrees is refused, and
//     so is a v2 option whose `extra` lacks the domain (facilitators cannot
//     verify its signature).
//   - An option that pays the wallet itself is refused, and so is one whose
//     payment flow x402 does not define. A flow in which the server takes
//     the money before it does the work (upfront, escrow) is a policy
//     denial unless payment_flows allows it (see assess).
//   - The payment header is sent only to the origin that issued the 402; it
//     is dropped from any redirect to another origin, and never logged.
//   - Everything read from the network is size-bounded.
//   - With the client's own transport (Config.Transport nil, as in
//     production), no request reaches a private address (loopback, RFC
//     1918, link-local, ...) that Config.AllowPrivate does not list: the
//     dialed address is checked before connecting, on every redirect hop,
//     and no environment proxy is used (it would hide the destination).
//   - Quote sends only GET or HEAD: a quote is read-only.
//   - A request that lacks an input its 402 declares required is not paid:
//     the server would fail it after taking the money.
//   - A payment above approval_above is paid only with the human's approval
//     of exactly its terms: an elicited answer bound to its binding, or an
//     approval in the ledger that the reservation consumes (once, in the
//     same transaction).
package pay

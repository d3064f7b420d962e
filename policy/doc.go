// Package policy decides whether a payment may be signed.
//
// Invariants:
//   - No signature without an approval. The signer accepts only an
//     *Approval, and only this package can issue one that is valid: the zero
//     value and a copy made elsewhere are refused.
//   - An approval covers exactly one authorization (token, payee, amount,
//     window, nonce) and can be consumed once.
//   - Limits come from the operator. The agent can only tighten them (a
//     per-call max_price lowers the cap, never raises it).
//   - Money is compared in integer atomic units; USD limits are exact decimal
//     numbers, converted with the registry's decimals for the token at hand.
//   - Anything unknown fails closed: a token without a USD value under a USD
//     cap, a network outside the allow list, an authorization that does not
//     match what was checked.
package policy

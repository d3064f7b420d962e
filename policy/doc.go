// Package policy decides whether a payment may be signed.
//
// The rules come from the operator's policy file (Load, Parse), or from
// Default when there is none. Check applies every static rule to one
// request; the budgets over time and the payment rate are only declared
// here (Budgets, MaxPaymentsPerMinute) and summed by the ledger.
//
// Invariants:
//   - No signature without a permit. The signer accepts only a *Permit,
//     and only Approve issues one that is valid: the zero value permits
//     nothing, and a copy is the same permit (its state is shared).
//   - A permit needs the ledger's reservation of its payment
//     (ledger.Reservation, which only the ledger makes: Reserve after its
//     commit, or RecordSent inside its write transaction, after every
//     budget check and the insert): no signature for a payment that is not
//     recorded and counted first. With RecordSent the signature is made
//     before the commit, and the paying flow sends it only after the
//     commit returned; a failed commit drops it unsent.
//   - A permit covers exactly one authorization (token, payee, amount,
//     window, nonce) and can be consumed once; a reservation backs one
//     permit. ("Approval" in this package's words is only the human's
//     approval above approval_above.)
//   - Limits come from the operator. The agent can only tighten them (a
//     per-call max_price lowers the cap, never raises it), and a payment
//     above approval_above needs the human's confirmation, not the agent's.
//   - All rules apply together; the strictest wins.
//   - Defaults do not vanish. A policy file starts from Default: a limit it
//     does not mention (the per-payment cap, the daily budget, the loop
//     breaker, the authorization window, the https rule, the payment flows)
//     keeps its default, and a limit is loosened only by writing it (a
//     larger value, or "none" to turn it off).
//   - Only the standard payment flow, where the server settles after it has
//     done the work, is allowed unless payment_flows lists another; a flow
//     x402 does not define is never allowed.
//   - Money is compared in integer atomic units; USD limits are exact decimal
//     numbers, converted with the registry's decimals for the token at hand.
//   - Hosts are matched on the parsed URL's host in one canonical form (see
//     NormalizeHost), never on the text of the URL; a host that cannot be
//     put in that form is refused, not guessed at.
//   - Anything unknown fails closed: a token without a USD value under a USD
//     cap, a network outside the allow list, an authorization that does not
//     match what was checked, a policy file with a key this package does
//     not know.
package policy

// Package localnet runs a self-contained x402 network inside the process, so
// payments are signed, verified and settled exactly as they would be against
// USDC on a public chain, without any network access.
//
// Chain is an in-memory EVM chain with a real EIP-3009 token deployed (the
// test USDC of the token subpackage): blocks are executed by go-ethereum's own
// state transition (package core) under Osaka rules, without a node, p2p
// networking or a database, so a binary that links localnet stays small.
// Facilitator verifies and settles x402 "exact" payments on that chain over
// the facilitator HTTP API of x402 v1 and v2, and serves a bazaar discovery
// listing. PaidAPI is a resource server that sells its routes (DefaultRoutes
// is the demo catalogue) through x402 v1 or v2, verifying and settling every
// payment through the facilitator over HTTP. Start wires them together into a Network: a chain, a funded
// facilitator account and a payee, and both servers on their own loopback
// ports, with the paid routes listed for discovery.
//
// The chain only produces blocks when asked. Chain owns the single goroutine
// that asks, so concurrent settlements share blocks and block timestamps
// never run further ahead of wall-clock time than ChainConfig.MaxClockDrift;
// x402 authorizations carry validity windows checked against
// block.timestamp, and a chain that raced ahead of the clock would reject
// payments a real network would accept.
//
// # Faults and idempotency, for "never pay twice" tests
//
// Hooks make the parts fail the way real ones do, while the chain stays
// real: a test asserts what happened on chain (balances,
// Chain.AuthorizationState, receipts), not what a hook reports.
//
//   - Facilitator.SetFault / ClearFault misbehave on POST /settle for the
//     next Fault.Times requests (0: until cleared): Before stalls and then
//     settles; After settles and then stalls the answer; Reason answers
//     {"success":false,"errorReason":Reason,"transaction":""} without
//     touching the chain; Pending broadcasts the transfer and answers
//     {"success":false,"errorReason":"settlement_pending","transaction":
//     "0x<hash>"} before it is mined. Stalls are capped at MaxFaultStall and
//     end when the network closes. Every settle answer is HTTP 200.
//   - Whatever a fault does, a transfer the facilitator broadcast but did not
//     see mined is answered settlement_pending with its hash, and a later
//     /settle of the same signed payment waits for that transaction instead
//     of sending another (the reference facilitators' pending-settlement
//     store); the paid API asks once more on settlement_pending, as the
//     reference resource servers do.
//   - Facilitator.Broadcasts lists every settlement transaction sent,
//     Settled counts those seen succeed, VerifyCalls and SettleCalls count
//     requests: "exactly one settlement" is one Broadcast for the
//     authorization and authorizationState true.
//   - Route.PaymentIdentifier serves the payment-identifier extension on a
//     v2 route: advertised in the 402, ids validated, looked up before
//     verification, bound to the exact request and payment (409 otherwise),
//     a finished payment's response replayed as sent, a resend during the
//     first request held back (bounded wait, then 503), a pending
//     settlement settled again on resend. The store is in memory, per
//     PaidAPI, bounded to 10000 ids.
//   - PaidAPI.DropAfterSettle(n) makes the next n settled requests close
//     the connection without an answer, after storing the response for the
//     payment id: a server crashing once it took the money. Leaving the
//     store alone models a restart that kept it; PaidAPI.ForgetPaymentIDs
//     models one that lost it.
//   - PaidAPI.AskAgain(n) makes the next n requests that carry a payment
//     answer 402 with unchanged terms, neither verifying nor settling: a
//     server that lost a valid payment and asks again. PaidAPI.Requests
//     counts every request to a route, paid or not.
package localnet

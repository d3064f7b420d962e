// Package ledger is the durable record of every payment x402-mcp makes, and
// the place where spending limits are enforced.
//
// Several x402-mcp processes (one per host window) may share one ledger
// file, so limits cannot live in memory: they are checked and recorded in
// one SQLite write transaction (BEGIN IMMEDIATE), which SQLite serialises
// across goroutines and processes alike.
//
// The paying flow uses it like this:
//
//	Reserve → sign → MarkSent → send → Settle | MarkUnknown | Fail
//
// and every process runs Reconcile at start to resolve what a dead process
// left behind.
//
// # Invariants
//
//   - A reservation is admitted only if, in the same write transaction, every
//     limit still holds with it included. Budgets are exact integer sums of
//     nano-USD (int64, overflow refuses); no floating point is involved.
//   - Every state but Failed counts as spent. A record becomes Failed only
//     when the signature provably never left its process (Fail or Reconcile
//     on a Reserved record: MarkSent is committed before the request leaves)
//     or can provably never be used (Reconcile: unused on chain and past
//     validBefore plus a clock-skew margin). Whenever the outcome is
//     ambiguous the record stays counted: the ledger may over-count, never
//     under-count.
//   - A call that changes the ledger returns only after its transaction is
//     committed with synchronous=FULL: a reservation the caller saw survives
//     kill -9 and power loss.
//   - Records are never deleted and their payment fields (amount, USD value,
//     host, payer, nonce, …) never change after Reserve; only state, lease
//     and outcome fields move, along the transitions below. SQL triggers
//     enforce this too, so no code path can break it by mistake.
//   - (payer, nonce) is unique, compared case-insensitively: the ledger never
//     holds two records for one authorization.
//   - A record in flight is leased by the process that reserved it. Reconcile
//     touches only records whose lease has expired, so a live process is
//     never overtaken; and once Reconcile has failed a Reserved record, its
//     owner can no longer mark it sent.
//
// # States
//
//	reserved → sent       MarkSent, by the owner only; renews the lease
//	reserved → failed     Fail by the owner, or Reconcile after the lease
//	sent     → settled    Settle
//	sent     → unknown    MarkUnknown, or Reconcile after the lease
//	unknown  → settled    Settle, or Reconcile when authorizationState says used
//	unknown  → failed     Reconcile only: unused and past validBefore
//
// Any other transition is refused with ErrBadTransition.
//
// # Concurrency and cost
//
// Within a process all writes go through one goroutine that groups the
// calls waiting at the same moment into one transaction, each call isolated
// by a savepoint. A durable commit costs an fsync whatever it holds, so
// concurrent callers share it; a lone caller still pays one fsync per call.
//
// Checking a limit costs the same however many records the ledger holds:
// triggers keep lifetime, hourly and per-minute sums per host; a lifetime
// limit reads one row, and a rolling window adds its whole hours, whole
// minutes, then the records of its first, partial minute. The result is
// exact to the nanosecond and the nano-USD: the same as summing the records.
//
// # The file
//
// WAL mode, synchronous=FULL, created 0600 in a 0700 directory. Keep it on a
// local file system (SQLite's locks do not work over network shares), and
// let nothing else in the process open it with os.Open: closing any
// descriptor of the file drops the POSIX locks SQLite holds on it (see
// modernc.org/sqlite's OFDLocking for the process-wide way out).
package ledger

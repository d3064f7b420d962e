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
//	RecordSent (budgets → insert as sent → Reservation → sign → store header → commit)
//	  → send → SettleLater | MarkUnknown
//
// RecordSent is one write transaction: after the duplicate-nonce check,
// every limit and the insert (the record goes in directly as Sent, with
// its payload), it makes the Reservation and calls the caller's sign
// function with it (the policy's permit, the signature and the header's
// encoding, about 0.1 ms under the write lock), stores the header with the
// record, and commits. The header may leave the process only after the
// commit returned; if anything fails, the transaction is undone and the
// signature is dropped unsent. The older path, Reserve → sign → MarkSent
// (MarkSentPayload) → send, is kept for callers that need a Reserved
// record first; it gives the same guarantees with one more commit.
//
// A paying flow that sent a payment on terms it knew from before, and was
// answered with other terms, calls MarkUnknownSuperseded: the payment stays
// counted (Unknown) but no longer stands for its request. Unresolved tells
// such a flow whether a host has a payment of unknown outcome.
//
// Every process runs Reconcile at start to resolve what a dead process left
// behind, then ReconcileEvery while it serves: a payment whose outcome is
// unknown is settled or released as soon as the chain proves which, and
// its budget is usable again without a restart.
//
// # Invariants
//
//   - A reservation is admitted only if, in the same write transaction, every
//     limit still holds with it included. Budgets are exact integer sums of
//     nano-USD (int64, overflow refuses); no floating point is involved.
//   - Every state but Failed counts as spent. A record becomes Failed only
//     when the signature provably never left its process (Fail or Reconcile
//     on a Reserved record: MarkSent, or RecordSent's insert as Sent, is
//     committed before the request leaves)
//     or can provably never be used (Reconcile: unused on chain as of a
//     finalized block past validBefore, or past validBefore plus a
//     clock-skew margin). Whenever the outcome is ambiguous the record stays
//     counted: the ledger may over-count, never under-count. One exception,
//     which the operator chooses by giving a network no RPC endpoint: an
//     Unknown record there cannot be checked, and is released NoRPCMargin
//     after validBefore, when nobody can settle it any more but somebody
//     may have settled it before (Change.Unchecked says so).
//   - A call that changes the ledger returns only after its transaction is
//     committed with synchronous=FULL: a reservation the caller saw survives
//     kill -9 and power loss. The exceptions are the deferred writes,
//     SettleLater and MarkDeliveredLater, which return at once: they only
//     move a record that already counts (Sent or Unknown) to Settled, or
//     mark its delivery, so losing one to a crash loses no money and no
//     limit: the record stays Sent, counted, and Reconcile resolves it
//     once its lease expires (with an RPC endpoint, settled or released by
//     authorizationState; without one it stays counted until
//     NoRPCMargin after validBefore). Deferred writes are queued on the
//     writer in order with every other write; this Ledger's reads (Get,
//     Recent, Pending, InFlight, Usage, Reconcile) wait for those queued
//     before them, so a process reads its own writes; Flush waits for
//     them, and Close commits them before it returns.
//   - Records are never deleted and their payment fields (amount, USD value,
//     host, payer, nonce, …) never change after Reserve; only state, lease
//     and outcome fields move, along the transitions below. SQL triggers
//     enforce this too, so no code path can break it by mistake.
//   - (payer, nonce) is unique, compared case-insensitively: the ledger never
//     holds two records for one authorization.
//   - A record in flight is leased by the process that reserved it. Reconcile
//     touches only records whose lease has expired, so a live process is
//     never overtaken; and once Reconcile has failed a Reserved record, its
//     owner can no longer mark it sent. MarkUnknown, the owner's last word
//     on a record, ends its lease: only the chain decides from then on.
//   - Reconcile asks the chain outside any transaction and applies each
//     change with an UPDATE conditional on the state it judged: any number
//     of reconcilers, in any processes, apply and report each transition
//     once, and none moves a record backwards.
//
// # States
//
//	(new)    → sent       RecordSent: checked, counted and signed in one transaction
//	reserved → sent       MarkSent, by the owner only; renews the lease
//	reserved → failed     Fail by the owner, or Reconcile after the lease
//	sent     → settled    Settle, SettleLater
//	sent     → unknown    MarkUnknown, or Reconcile after the lease
//	unknown  → settled    Settle, or Reconcile when authorizationState says used
//	unknown  → failed     Reconcile only: unused and expired, or unchecked past NoRPCMargin
//
// Any other transition is refused with ErrBadTransition.
//
// # Approvals
//
// A payment above the operator's approval threshold needs a human's yes.
// When the host cannot ask (no elicitation), the paying flow records a
// pending approval; a human approves or denies it out of band (the CLI);
// when the agent repeats the call, the payment uses it:
//
//	RequestApproval → Decide → Reserve with Record.Approval
//
//	pending  → approved | denied   Decide, while unexpired
//	approved → used                Reserve, while unexpired
//
// "expired" is not a state but a status (Approval.Status): a pending or
// approved approval past Expires can no longer be decided or used, so
// nothing needs to run for approvals to expire.
//
//   - An approval pays at most once. Reserve (or RecordSent) consumes it in the same write
//     transaction that checks the budgets and inserts the record, with an
//     UPDATE conditional on its being approved and unexpired; if that
//     changes no row the whole reservation is undone. Any number of
//     payments racing for one approval, in any processes, get one record
//     between them; a budget refusal leaves the approval unused.
//   - An approval pays only the terms it was granted for: the payment must
//     present the same Binding (pay's hash of the exact terms) and carry
//     the same amount, asset, network, payee and host. A repeat of the
//     call whose terms changed finds the old approval by its RequestKey,
//     and needs a new one.
//   - Deciding is one conditional UPDATE too: of two humans answering at
//     once, one decision holds and the other is told what happened.
//   - Approvals are never deleted and their terms never change; a used
//     approval names its record, and a record uses at most one approval.
//     SQL triggers enforce the transitions above and these rules.
//   - Text another party wrote (the requester) is stored as one clean,
//     bounded line, and the URL and token a human reads hold no invisible
//     or format characters.
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
// # Integrity
//
// Budgets are enforced from the sums, so whoever can lower a sum can
// spend again. The ledger defends them in layers, and says honestly where
// each stops:
//
//   - Access. Open refuses a ledger file (or its -wal, -shm) or directory
//     that group or others can write, or that belongs to another user (the
//     directory may be root's), naming the chmod or chown that fixes it. A
//     new ledger is created 0600 in a 0700 directory, whatever the umask
//     (it can only remove bits). Not on Windows, which has no mode bits:
//     there the default location is private to the user by its ACLs.
//   - Triggers. Sums change only inside the records triggers, which open a
//     guard row (sums_guard) around their writes; any other INSERT or
//     UPDATE on sums, or DELETE, is refused, as are changes to a record's
//     payment fields, deleting a record, and every state transition but
//     those in States. This stops a bug and a naive edit such as
//     `UPDATE sums SET usd_nano = 0`. It cannot stop a deliberate one:
//     SQLite has no roles, so whoever can write the file can open the
//     guard or drop the triggers.
//   - The check at open. Open compares the schema (every table, index and
//     trigger) with the one the migrations build, and recomputes every sum
//     from the records. On any difference it refuses with an
//     *IntegrityError naming it (Options.Inspect opens the ledger for
//     reading, and Reserve still refuses). Repair rebuilds the triggers
//     and rewrites the sums from the records, never from the stored sums.
//     The recount reads every counted record once: about 0.3 s per 100,000
//     records (BenchmarkVerify). A process already running does not notice
//     tampering until it is restarted.
//   - Identity. Each ledger has a random id (the meta table), which Open
//     also writes to an identity file outside the ledger's directory
//     (Options.IDFile, IDFilePath). A ledger that is missing, or has
//     another id, is refused with an *IdentityError: a deleted ledger is
//     not an empty budget. Deleting the identity file is how to start
//     over on purpose.
//
// What no check here can catch, from someone who can write the file:
//
//   - moving records along the allowed transitions: reserved → failed, and
//     sent → unknown → failed, release their budget through the triggers,
//     exactly as Fail and Reconcile do; SQL cannot tell who issued the
//     UPDATE. A settled record can never be released this way;
//   - rewriting records and sums consistently, with the triggers dropped
//     and put back;
//   - putting back an older copy of the same ledger (same id).
//
// Against these the defence is access: only the user x402-mcp runs as can
// write the ledger, so do not give the agent a shell as that user.
//
// # The file
//
// WAL mode, synchronous=FULL, created 0600 in a 0700 directory. Keep it on a
// local file system (SQLite's locks do not work over network shares), and
// let nothing else in the process open it with os.Open: closing any
// descriptor of the file drops the POSIX locks SQLite holds on it (see
// modernc.org/sqlite's OFDLocking for the process-wide way out).
package ledger

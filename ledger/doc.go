// Package ledger is the durable record of every payment x402-mcp makes, and
// the place where spending limits are enforced.
//
// Several x402-mcp processes (one per host window) may share one ledger
// file, so limits cannot live in memory: they are checked and recorded in
// one SQLite write transaction (BEGIN IMMEDIATE), which SQLite serialises
// across goroutines and processes alike. A fleet of agents on several
// machines shares one ledger in a PostgreSQL database instead, with the
// same behaviour and invariants (see "PostgreSQL" below).
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
//   - (payer, nonce) is unique, its stored hex compared case-insensitively:
//     the ledger never holds two records for one authorization. Addresses
//     and nonces are typed in Go and text in the database (keys.go); a
//     stored one that does not parse fails the read.
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
// # PostgreSQL
//
// Open with a postgres:// or postgresql:// URL puts the ledger in that
// database; everything above holds there too, across every process on every
// machine that opens the same database. The driver is pgx
// (github.com/jackc/pgx/v5) through database/sql, so the code is the
// SQLite code: a small seam (dialect.go) rewrites each query once, '?' to
// '$1…', cached by its text, or swaps in the few that differ (pgOverrides:
// the insert returns its id; a subquery gets a name; no INDEXED BY).
//
// Serialising writers. Every write transaction is BEGIN, then
// pg_advisory_xact_lock on a fixed key (pgWriteLock): one writer at a time
// in the whole fleet, exactly as SQLite's BEGIN IMMEDIATE gives one per
// file. READ COMMITTED is then enough: every statement after the lock sees
// all that was committed before it, and no other writer can commit until
// this one ends. Reads that must agree with themselves (Usage, Verify) run
// in a read-only REPEATABLE READ snapshot; they never take the lock.
// Sessions set synchronous_commit=on, so a commit returns once durable;
// lock_timeout is SQLite's busy timeout (a writer waits 10 s for the lock,
// then fails having recorded nothing), and idle_in_transaction_session_timeout
// (30 s) ends the session of a process stopped inside its transaction, so
// a frozen machine cannot hold the fleet's lock.
//
// Measured on a 2-core shared machine (noisy; BenchmarkPostgresLocking:
// same reserve code, one transaction per reservation, each client on its
// own connection; reservations/s for 1, 8 and 64 clients):
//
//	global advisory lock (chosen)   221   47–71   55
//	per-scope row locks (FOR UPDATE) 196   61–109  68
//	SERIALIZABLE with retry          135   39      6.6 (27 retries per reservation)
//
// Row locks are no real alternative: every paying call checks a global
// limit (the daily budget over all hosts), so every transaction locks the
// same all-hosts row and they serialise as under the global lock; they also
// need the row to exist before the first payment and a fixed lock order to
// avoid deadlocks. The difference measured is within this machine's noise.
// SERIALIZABLE collapses under contention (every reservation updates the
// same sums rows), and a retry would have to re-run RecordSent's sign
// function. The global lock is the simplest exact choice. Through Ledger
// (BenchmarkReservePostgres, each client a Ledger of its own, as processes
// are): 304, 253 and 50 reservations/s; SQLite's file on the same machine
// (BenchmarkReserveClients): 968, 451 and 216. One process with many
// callers does better on both, as the writer batches them into one commit.
//
// Schema. The tables live in schema x402 of the URL's database, so they
// keep apart from anything else there; the connection's search_path is set
// to it. A database whose x402 schema is not an x402-mcp ledger is refused
// (ErrNotLedger), one of a newer schema too (ErrTooNew). The migrations
// (pgMigrations, append only) run at Open inside a session-level advisory
// lock on one connection (pgMigrateLock), so many processes opening a new
// database at once migrate it once. x402.meta holds schema_version and the
// random ledger_id. The tables, CHECKs and rules are SQLite's, with BIGINT
// for ns and nano-USD (an overflowing sum raises an error: refused, never
// wrapped) and a regular expression for amount. Each SQLite trigger is a
// PL/pgSQL trigger raising the same message; TRUNCATE, which row triggers
// do not see, is refused too. The sums guard is pg_trigger_depth(): sums
// may change only from inside the records triggers, or in a transaction that
// set x402.repair (Repair); no guard row is written per payment.
//
// Integrity at Open: every trigger is there, enabled, and no other; every
// trigger function has this program's body; every index and constraint is
// there by name (their text varies with the server's version, so it is not
// compared; a missing one is not repairable); every sum equals the recount
// of its records. On a difference Open fails with an *IntegrityError (or
// Options.Inspect); Verify and Repair work as for SQLite. What is
// SQLite-only, and skipped for PostgreSQL: the file permission checks
// (*AccessError: the database's roles and pg_hba.conf are the access
// control), the identity file (Options.IDFile: a dropped and re-created
// database is an empty ledger; guard the database, not a file) and the
// replaced-file check (ErrReplaced). PostgreSQL has roles, so the defence
// can be stronger than SQLite's: give x402-mcp a role that does not own the
// schema. Whoever owns it can still open the guard or drop the triggers,
// which Open's check catches at the next start.
//
// Passwords. Open refuses a URL that carries a password (user:password@ or
// a password or sslpassword parameter) without repeating it: give it in
// ~/.pgpass, the file PGPASSFILE or the passfile parameter names, or
// PGPASSWORD. So no error, log or Path ever holds one.
//
// CopyTo copies a ledger into another (a SQLite file into a new PostgreSQL
// database): every record with its payload, and every approval, through
// the destination's triggers, idempotently.
//
// An unreachable server fails closed and recovers by itself. If the server
// cannot be reached at Open (refused, timed out, shutting down), Open still
// returns a Ledger, not yet ready: every call fails with an error matching
// ErrUnavailable, nothing is recorded and RecordSent never calls its sign
// function; at most once a second a call tries connect, migrate and verify
// again, and once they succeed the Ledger works normally. Bad credentials,
// a missing database, a foreign schema or a failed integrity check are not
// unavailability: Open fails as it would for SQLite. When the server goes
// away while running, a write whose BEGIN, lock or statements fail on the
// connection fails with ErrUnavailable and recorded nothing; database/sql
// drops the broken connection (pgx reports it bad) and the next call
// connects again, without a restart. If COMMIT itself loses its answer the
// outcome is ambiguous: RecordSent returns the error, so the header never
// leaves; if the commit did happen the record stays counted as Sent and
// Reconcile resolves it after its lease, the over-count, never under-count
// rule. SettleLater and MarkDeliveredLater while unavailable lose their
// write the same way a crash would: the record stays counted.
//
// # The file

// WAL mode, synchronous=FULL, created 0600 in a 0700 directory. Keep it on a
// local file system (SQLite's locks do not work over network shares), and
// let nothing else in the process open it with os.Open: closing any
// descriptor of the file drops the POSIX locks SQLite holds on it (see
// modernc.org/sqlite's OFDLocking for the process-wide way out).
package ledger

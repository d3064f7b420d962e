package ledger

// The queries the writer runs, prepared once per Ledger (see wtx).
const (
	qFindNonce = `SELECT id FROM records WHERE lower(payer) = lower(?) AND lower(nonce) = lower(?)`

	qInsert = `INSERT INTO records
		(created, updated, url, host, network, asset, token, decimals, amount, usd_nano,
		 pay_to, payer, nonce, valid_before, state, owner, lease_until)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// Lifetime sums: one row of sums; host '' is all hosts.
	qSumLifetime = `SELECT usd_nano, count FROM sums WHERE host = ? AND span = 0 AND start = 0`
	// A rolling window [?4, ∞): whole hours from ?2, whole minutes in
	// [?3, ?2), records in [?4, ?3). sum() raises an error on int64
	// overflow rather than rounding, so an absurd ledger fails closed.
	qSumWindow = `SELECT coalesce(sum(u), 0), coalesce(sum(c), 0) FROM (
		SELECT usd_nano AS u, count AS c FROM sums WHERE host = ?1 AND span = 3600000000000 AND start >= ?2
		UNION ALL
		SELECT usd_nano, count FROM sums WHERE host = ?1 AND span = 60000000000 AND start >= ?3 AND start < ?2
		UNION ALL
		SELECT usd_nano, 1 FROM records WHERE created >= ?4 AND created < ?3 AND state <> 'failed')`
	qSumWindowHost = `SELECT coalesce(sum(u), 0), coalesce(sum(c), 0) FROM (
		SELECT usd_nano AS u, count AS c FROM sums WHERE host = ?1 AND span = 3600000000000 AND start >= ?2
		UNION ALL
		SELECT usd_nano, count FROM sums WHERE host = ?1 AND span = 60000000000 AND start >= ?3 AND start < ?2
		UNION ALL
		SELECT usd_nano, 1 FROM records WHERE host = ?1 AND created >= ?4 AND created < ?3 AND state <> 'failed')`

	qStateOwner = `SELECT state, owner FROM records WHERE id = ?`
	// One statement for every transition: a NULL leaves a field as it is.
	qMove = `UPDATE records SET state = ?, updated = ?,
		lease_until = coalesce(?, lease_until), tx = coalesce(?, tx),
		settlement = coalesce(?, settlement), note = coalesce(?, note)
		WHERE id = ?`

	qExpired = `SELECT id, state, owner FROM records
		WHERE state IN ('reserved', 'sent') AND lease_until <= ? ORDER BY id`
	qExpire = `UPDATE records SET state = ?, note = ?, updated = ?
		WHERE id = ? AND state = ? AND lease_until <= ?`
	// Applies a chain check only if nobody resolved the record meanwhile.
	qResolve = `UPDATE records SET state = ?, note = ?, updated = ?
		WHERE id = ? AND state = 'unknown' AND lease_until <= ?`

	// Consumes an approval for record ?1 (see useApproval): one statement,
	// so checking and marking it used cannot be split by another writer.
	qUseApproval = `UPDATE approvals SET state = 'used', record_id = ?1
		WHERE id = ?3 AND state = 'approved' AND expires > ?2 AND binding = ?4
		AND amount = ?5 AND network = ?6 AND host = ?7
		AND lower(asset) = lower(?8) AND lower(pay_to) = lower(?9)`
)

var writeQueries = []string{
	qFindNonce, qInsert, qSumLifetime, qSumWindow, qSumWindowHost,
	qStateOwner, qMove, qExpired, qExpire, qResolve, qUseApproval,
	qInFlight, qInsertPayload, qSetHeader, qDelivered,
	qSavepoint, qRollbackTo, qRelease,
}

// The writer's per-call savepoint (see commit), prepared like the rest.
const (
	qSavepoint  = "SAVEPOINT op"
	qRollbackTo = "ROLLBACK TO op"
	qRelease    = "RELEASE op"
)

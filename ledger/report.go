package ledger

import (
	"context"
	"time"
)

// Counted returns the newest n counted records (every state but Failed)
// created at or after since, newest first: what the operator console
// charts and breaks down by host and payee, and where it finds when a
// rolling budget frees up. n is capped at maxReport; n < 1 returns none.
// The query is portable SQL with ? placeholders, run like every other
// read (query).
func (l *Ledger) Counted(ctx context.Context, since time.Time, n int) ([]Record, error) {
	if n < 1 {
		return nil, nil
	}
	n = min(n, maxReport)
	return l.query(ctx, `SELECT `+recordColumns+` FROM records
		WHERE created >= ? AND state <> 'failed' ORDER BY created DESC, id DESC LIMIT ?`, since.UnixNano(), n)
}

// maxReport bounds one Counted answer: far more payments than a month of
// agent work makes, and few enough to hold in memory.
const maxReport = 50_000

package ledger

import (
	"cmp"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// The integrity checks Open makes (see "Integrity" in doc.go):
//
//   - access: the file, its -wal and -shm, and its directory are the
//     user's and no one else can write them;
//   - identity: the ledger at the path is the one created there (the
//     identity file, Options.IDFile, remembers its id outside its
//     directory), so a deleted or swapped ledger is not a fresh start;
//   - schema: every table, index and trigger is exactly what this program
//     creates, so a dropped or edited trigger is noticed;
//   - recount: every stored sum equals the sum of the records it counts.

var (
	// ErrInsecure: another user could write the ledger. Returned as an
	// *AccessError. Open changed nothing.
	ErrInsecure = errors.New("ledger: others can write the ledger")
	// ErrTampered: the ledger's sums disagree with its records, or its
	// schema is not this program's. Returned as an *IntegrityError.
	ErrTampered = errors.New("ledger: the ledger fails its integrity check")
	// ErrIdentity: the ledger created at this path is missing, or another
	// one is in its place. Returned as an *IdentityError. Open changed
	// nothing.
	ErrIdentity = errors.New("ledger: not the ledger created at this path")
)

// AccessError says which file or directory others could write, and the
// command that fixes it. It matches ErrInsecure.
type AccessError struct {
	Path string
	msg  string
}

func (e *AccessError) Error() string { return "ledger: " + e.msg }

// Is makes errors.Is(err, ErrInsecure) true.
func (e *AccessError) Is(target error) bool { return target == ErrInsecure }

// IntegrityError is a ledger whose schema or sums are not what its records
// and this program say they should be. It matches ErrTampered.
type IntegrityError struct {
	Path   string
	Schema []string  // schema differences, for people
	Sums   []SumDiff // stored sums that disagree with the records (at most maxDiffs)
	More   bool      // there are more differing sums than Sums holds
}

func (e *IntegrityError) Error() string {
	var parts []string
	parts = append(parts, e.Schema...)
	for _, d := range e.Sums {
		parts = append(parts, d.String())
	}
	n := len(parts)
	const shown = 3
	if n > shown {
		parts = parts[:shown]
	}
	msg := strings.Join(parts, "; ")
	if n > shown || e.More {
		msg += "; and more"
	}
	return fmt.Sprintf("ledger: %s was changed outside x402-mcp, payments are refused: %s", e.Path, msg)
}

// Is makes errors.Is(err, ErrTampered) true.
func (e *IntegrityError) Is(target error) bool { return target == ErrTampered }

// Repairable reports whether Repair can put the ledger right: only
// triggers and sums differ, and both are rebuilt from the records and this
// program's schema. A changed table or index is not repairable.
func (e *IntegrityError) Repairable() bool {
	for _, s := range e.Schema {
		if !strings.HasPrefix(s, "trigger ") && s != guardOpen {
			return false
		}
	}
	return true
}

// SumDiff is one stored sum that disagrees with the records it counts.
type SumDiff struct {
	Host    string        // "" = all hosts
	Span    time.Duration // 0 = lifetime, else an hour or a minute
	Start   time.Time     // of the hour or minute; zero for lifetime
	Stored  Total         // what the sums table says
	Counted Total         // what the records add up to
}

// Total is an amount with the number of payments it sums.
type Total struct {
	USDNano int64
	Count   int64
}

func (d SumDiff) String() string {
	var what string
	switch d.Span {
	case 0:
		what = "lifetime total"
	case time.Hour:
		what = "total of the hour from " + d.Start.UTC().Format("2006-01-02 15:04 UTC")
	case time.Minute:
		what = "total of the minute from " + d.Start.UTC().Format("2006-01-02 15:04 UTC")
	default:
		what = fmt.Sprintf("sum of span %v from %s", d.Span, d.Start.UTC().Format(time.RFC3339Nano))
	}
	host := "all hosts"
	if d.Host != "" {
		host = d.Host
	}
	payments := "payments"
	if d.Stored.Count == 1 {
		payments = "payment"
	}
	return fmt.Sprintf("%s (%s) is %s USD for %d %s, but the records add up to %s USD for %d",
		what, host, FormatUSDNano(d.Stored.USDNano), d.Stored.Count, payments, FormatUSDNano(d.Counted.USDNano), d.Counted.Count)
}

// maxDiffs bounds how many differing sums a check reports.
const maxDiffs = 20

const guardOpen = "the sums guard is left open"

type rowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// recountSums recomputes every sum from the records and returns, sorted,
// up to limit (all when limit < 0) stored sums that differ. A stored row
// of zeros that no record makes is no difference: the uncount trigger
// leaves those. It streams the records once (host, created, usd_nano:
// covered by records_host_created) and the sums once, and adds up in Go:
// in SQL the GROUP BYs and the join cost three times as much (see
// BenchmarkVerify).
func recountSums(ctx context.Context, q rowsQueryer, limit int) ([]SumDiff, error) {
	type key struct {
		host        string
		span, start int64
	}
	want := make(map[key]Total)
	// In index order, so a minute's records come together: the map is
	// touched once per minute and host, not six times per record.
	rows, err := q.QueryContext(ctx, qRecountRecords)
	if err != nil {
		return nil, fmt.Errorf("ledger: recount: %w", err)
	}
	defer rows.Close()
	var (
		raw          sql.RawBytes // valid until Next: no string per record
		host         string
		created, usd int64
		run          Total // the records of (host, minute) so far
		minute       int64
	)
	flush := func() error {
		if run.Count == 0 {
			return nil
		}
		hour := floor(minute, hourNS)
		for _, k := range [...]key{{"", 0, 0}, {host, 0, 0}, {"", hourNS, hour}, {host, hourNS, hour}, {"", minuteNS, minute}, {host, minuteNS, minute}} {
			t := want[k]
			if run.USDNano > math.MaxInt64-t.USDNano {
				return errors.New("ledger: recount: the records' total overflows")
			}
			want[k] = Total{t.USDNano + run.USDNano, t.Count + run.Count}
		}
		run = Total{}
		return nil
	}
	for rows.Next() {
		if err := rows.Scan(&raw, &created, &usd); err != nil {
			return nil, fmt.Errorf("ledger: recount: %w", err)
		}
		if m := floor(created, minuteNS); m != minute || string(raw) != host {
			if err := flush(); err != nil {
				return nil, err
			}
			minute = m
			if string(raw) != host {
				host = string(raw)
			}
		}
		if usd > math.MaxInt64-run.USDNano {
			return nil, errors.New("ledger: recount: the records' total overflows")
		}
		run.USDNano += usd
		run.Count++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: recount: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	rows.Close()

	var diffs []SumDiff
	diff := func(k key, stored, counted Total) {
		d := SumDiff{Host: k.host, Span: time.Duration(k.span), Stored: stored, Counted: counted}
		if k.span != 0 || k.start != 0 {
			d.Start = time.Unix(0, k.start).UTC()
		}
		diffs = append(diffs, d)
	}
	rows, err = q.QueryContext(ctx, `SELECT host, span, start, usd_nano, count FROM sums`)
	if err != nil {
		return nil, fmt.Errorf("ledger: recount: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		var stored Total
		if err := rows.Scan(&k.host, &k.span, &k.start, &stored.USDNano, &stored.Count); err != nil {
			return nil, fmt.Errorf("ledger: recount: %w", err)
		}
		counted := want[k]
		delete(want, k)
		if stored != counted {
			diff(k, stored, counted)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: recount: %w", err)
	}
	for k, counted := range want {
		diff(k, Total{}, counted)
	}
	slices.SortFunc(diffs, func(a, b SumDiff) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Span, b.Span), a.Start.Compare(b.Start))
	})
	if limit >= 0 && len(diffs) > limit {
		diffs = diffs[:limit]
	}
	return diffs, nil
}

const qRecountRecords = `SELECT host, created, usd_nano FROM records INDEXED BY records_host_created
		WHERE state <> 'failed' ORDER BY host, created`

// floor is the start of the span-long bucket holding t, as the triggers
// compute it (right for times before 1970 too).
func floor(t, span int64) int64 { return t - (t%span+span)%span }

// schemaObject is one row of sqlite_schema.
type schemaObject struct{ typ, name, sql string }

func schemaOf(ctx context.Context, q rowsQueryer) (map[string]schemaObject, error) {
	rows, err := q.QueryContext(ctx, `SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE 'sqlite_stat%'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[string]schemaObject)
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.typ, &o.name, &o.sql); err != nil {
			return nil, err
		}
		m[o.typ+" "+o.name] = o
	}
	return m, rows.Err()
}

// expectedSchema is the schema the migrations build: the one source of
// truth, so the check can never disagree with what Open creates. For the
// version schema.json holds (the current one) it is read from that file,
// which TestSchemaFileIsCurrent holds to what buildSchema reads: building
// it cost every process several milliseconds of SQL at start. Other
// versions (tests run older ones) are built. Cached per schema version.
func expectedSchema() (map[string]schemaObject, error) {
	schemaCache.Lock()
	defer schemaCache.Unlock()
	if m, ok := schemaCache.m[schemaVersion]; ok {
		return m, nil
	}
	m := embeddedSchema(schemaVersion)
	if m == nil {
		var err error
		if m, err = buildSchema(schemaVersion); err != nil {
			return nil, err
		}
	}
	if schemaCache.m == nil {
		schemaCache.m = make(map[int]map[string]schemaObject)
	}
	schemaCache.m[schemaVersion] = m
	return m, nil
}

// buildSchema reads the schema that the first version migrations build,
// from a fresh in-memory database.
func buildSchema(version int) (map[string]schemaObject, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // each connection to :memory: is a database of its own
	ctx := context.Background()
	for v, m := range migrations[:version] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			return nil, fmt.Errorf("ledger: schema v%d: %w", v+1, err)
		}
	}
	return schemaOf(ctx, db)
}

//go:embed schema.json
var schemaFile []byte

// schemaJSON is schema.json: the version whose schema it holds, and
// that schema's objects.
type schemaJSON struct {
	Version int
	Objects []schemaRow
}

// schemaRow is one schemaObject in schema.json.
type schemaRow struct{ Type, Name, SQL string }

// embeddedSchema decodes schema.json if it holds version; nil if it holds
// another or does not decode, and the schema is then built
// (TestSchemaFileIsCurrent fails on such a file).
func embeddedSchema(version int) map[string]schemaObject {
	var f schemaJSON
	if json.Unmarshal(schemaFile, &f) != nil || f.Version != version || len(f.Objects) == 0 {
		return nil
	}
	m := make(map[string]schemaObject, len(f.Objects))
	for _, r := range f.Objects {
		m[r.Type+" "+r.Name] = schemaObject{typ: r.Type, name: r.Name, sql: r.SQL}
	}
	return m
}

var schemaCache struct {
	sync.Mutex
	m map[int]map[string]schemaObject
}

// schemaDiff lists, sorted, how have differs from want.
func schemaDiff(have, want map[string]schemaObject) []string {
	var out []string
	for k, w := range want {
		h, ok := have[k]
		switch {
		case !ok:
			out = append(out, k+" is missing")
		case h.sql != w.sql:
			out = append(out, k+" is not x402-mcp's (changed)")
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			out = append(out, k+" is not x402-mcp's")
		}
	}
	slices.Sort(out)
	return out
}

// verify runs the schema check and the recount in one read transaction.
// It returns nil when the ledger is whole.
func verify(ctx context.Context, db *sql.DB, path string) (*IntegrityError, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, openError(path, "begin", err)
	}
	defer tx.Rollback()
	return verifyTx(ctx, tx, path)
}

func verifyTx(ctx context.Context, q rowsQueryer, path string) (*IntegrityError, error) {
	want, err := expectedSchema()
	if err != nil {
		return nil, err
	}
	have, err := schemaOf(ctx, q)
	if err != nil {
		return nil, openError(path, "read schema", err)
	}
	e := &IntegrityError{Path: path, Schema: schemaDiff(have, want)}
	if len(e.Schema) > 0 && !e.Repairable() {
		return e, nil // a table is gone or changed: a recount could fail or mislead
	}
	if _, ok := want["table sums_guard"]; ok {
		var open int
		if err := q.QueryRowContext(ctx, `SELECT open FROM sums_guard`).Scan(&open); err != nil {
			return nil, openError(path, "read the sums guard", err)
		}
		if open != 0 {
			e.Schema = append(e.Schema, guardOpen)
		}
	}
	return e.recount(ctx, q)
}

// recount finishes an integrity check, on either backend, once its
// schema checks are in e: the sums are recounted from the records (at most
// maxDiffs differences kept), and nil is returned when nothing differs.
func (e *IntegrityError) recount(ctx context.Context, q rowsQueryer) (*IntegrityError, error) {
	var err error
	if e.Sums, err = recountSums(ctx, q, maxDiffs+1); err != nil {
		return nil, err
	}
	if len(e.Sums) > maxDiffs {
		e.Sums, e.More = e.Sums[:maxDiffs], true
	}
	if len(e.Schema) == 0 && len(e.Sums) == 0 {
		return nil, nil
	}
	return e, nil
}

// Verify runs Open's integrity check again on the open ledger: nil, or
// an *IntegrityError.
func (l *Ledger) Verify(ctx context.Context) error {
	tx, err := l.rdb.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var e *IntegrityError
	if l.d.pg {
		e, err = verifyPG(ctx, tx, l.path)
	} else {
		e, err = verifyTx(ctx, tx, l.path)
	}
	if err != nil {
		return err
	}
	if e != nil {
		return e
	}
	return nil
}

// Damage is the *IntegrityError an Options.Inspect Open found, or nil.
// While it is set, Reserve refuses with it.
func (l *Ledger) Damage() error {
	if l.damage == nil {
		return nil
	}
	return l.damage
}

// checkFiles refuses the ledger at abs when others could write it, its
// directory, or its -wal and -shm files. A symlinked ledger is checked
// where it really is, too.
func checkFiles(abs string) error {
	paths := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		paths = append(paths, real)
	}
	for _, p := range paths {
		if err := checkAccess(filepath.Dir(p), "the ledger's directory", true); err != nil {
			return err
		}
		if err := checkAccess(p, "ledger file", false); err != nil {
			return err
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			if err := checkAccess(p+suffix, "ledger file", false); err != nil {
				return err
			}
		}
	}
	return nil
}

// quote makes a path safe to paste into this machine's shell, for the
// commands the errors print (the ledger imports none of x402-mcp's
// packages, so this is internal/shellquote's rule, restated).
func quote(s string) string {
	safe := "@%+=:,./_-"
	windows := runtime.GOOS == "windows"
	if windows {
		safe += `\`
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(safe, r))
	}) < 0 {
		return s
	}
	if windows {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

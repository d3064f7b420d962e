package console

import (
	"context"
	"fmt"
	"github.com/x402-mcp/x402-mcp/internal/humantime"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/pay"
	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// How much the page reads from the ledger.
const (
	recentRows   = 50
	pendingRows  = 100
	reportWindow = 30 * 24 * time.Hour // the longest budget window
	reportRows   = 20_000
)

// page is everything the console page shows, every text already cleaned.
type page struct {
	Ledger    string
	Generated string
	Flash     string
	CSRF      string

	Approvals []approvalView
	Budgets   []budgetView
	Hourly    chart
	Daily     chart
	ByHost    []share
	ByPayee   []share
	Payments  []paymentView
	Policy    []policyLine
	// Truncated says the charts hold only the newest reportRows payments
	// of the last 30 days.
	Truncated bool
}

type approvalView struct {
	ID      string
	Status  string
	Terms   []pay.Term
	Expires string
	Age     string
}

type budgetView struct {
	Name, Key   string
	Spent, Left string // USD, or a count for the rate limit
	Limit       string
	Percent     int // of the limit spent, 0..100
	Full        bool
	Frees       string // when the oldest payment counted leaves the window
}

type paymentView struct {
	ID       int64
	Time     string
	Amount   string
	Token    string
	Network  string
	Host     string
	PayTo    string
	State    string
	Tx       string
	TxURL    string // explorer link, "" without an explorer
	Note     string
	Approved bool
}

type policyLine struct {
	Text    string
	Default bool
}

// build reads the ledger and makes the page.
func (s *Server) build(ctx context.Context) (*page, error) {
	now := s.now()
	p := &page{Ledger: s.opts.Ledger.Path(), Generated: now.UTC().Format("2006-01-02 15:04:05 UTC")}

	as, err := s.opts.Ledger.Approvals(ctx, false, pendingRows)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		terms := append(pay.ApprovalTerms(a), pay.Term{Name: "asked by", Value: x402.Display(a.Requester, 200)})
		p.Approvals = append(p.Approvals, approvalView{ID: x402.Display(a.ID, 40), Status: a.Status(now), Terms: terms,
			Expires: humantime.Stamp(a.Expires) + " (" + humantime.Relative(now, a.Expires) + ")", Age: humantime.Roughly(now.Sub(a.Created)) + " ago"})
	}

	counted, err := s.opts.Ledger.Counted(ctx, now.Add(-reportWindow), reportRows)
	if err != nil {
		return nil, err
	}
	p.Truncated = len(counted) == reportRows
	usage, err := s.opts.Ledger.Usage(ctx, pay.Limits(s.opts.Policy))
	if err != nil {
		return nil, err
	}
	for _, u := range usage {
		p.Budgets = append(p.Budgets, budget(u, counted, now, p.Truncated))
	}

	p.Hourly = timeChart(counted, now, time.Hour, 48, "15:04", 6)
	p.Daily = timeChart(counted, now, 24*time.Hour, 30, "Jan 2", 5)
	p.ByHost = shares(counted, func(r ledger.Record) string { return x402.Display(r.Host, 255) })
	p.ByPayee = shares(counted, func(r ledger.Record) string { return r.PayTo.Hex() })

	recs, err := s.opts.Ledger.Recent(ctx, recentRows)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		p.Payments = append(p.Payments, s.payment(r))
	}

	for _, line := range strings.Split(strings.TrimSpace(s.opts.Policy.Describe()), "\n") {
		p.Policy = append(p.Policy, policyLine{Text: line, Default: strings.HasSuffix(line, "(default)")})
	}
	return p, nil
}

// budget shows one limit: spent, left, and when it frees up, which for a
// rolling window is when the oldest payment it counts leaves it.
func budget(u ledger.Usage, counted []ledger.Record, now time.Time, truncated bool) budgetView {
	l := u.Limit
	b := budgetView{Name: l.Name, Key: pay.LimitKey(l)}
	var spent, limit int64
	if l.MaxCount > 0 {
		spent, limit = int64(u.Count), int64(l.MaxCount)
		b.Spent, b.Limit = fmt.Sprintf("%d payments", u.Count), fmt.Sprintf("%d payments", l.MaxCount)
		b.Left = fmt.Sprintf("%d payments", max(0, l.MaxCount-u.Count))
	} else {
		spent, limit = u.SpentUSDNano, l.MaxUSDNano
		b.Spent, b.Limit, b.Left = ledger.FormatUSDNano(spent)+" USD", ledger.FormatUSDNano(limit)+" USD", ledger.FormatUSDNano(u.LeftUSDNano)+" USD"
	}
	if limit > 0 {
		b.Percent = percent(spent, limit)
		b.Full = spent >= limit
	}
	switch {
	case spent == 0:
		b.Frees = "nothing to free"
	case l.Window == 0:
		b.Frees = "never: a lifetime budget"
	default:
		var oldest *ledger.Record
		for i := range counted {
			r := &counted[i]
			if (l.Host == "" || r.Host == l.Host) && !r.Created.Before(now.Add(-l.Window)) {
				oldest = r // counted is newest first
			}
		}
		switch {
		case oldest == nil || truncated:
			b.Frees = "gradually, as payments leave the last " + windowWords(l.Window)
		default:
			at := oldest.Created.Add(l.Window)
			what := ledger.FormatUSDNano(oldest.USDNano) + " USD"
			if l.MaxCount > 0 {
				what = "1 payment"
			}
			b.Frees = fmt.Sprintf("%s at %s (%s)", what, humantime.Stamp(at), humantime.Relative(now, at))
		}
	}
	return b
}

// percent is 100·a/b for a bar, in integers that cannot overflow, at
// most 100, and at least 1 when a > 0.
func percent(a, b int64) int {
	if b <= 0 || a <= 0 {
		return 0
	}
	if a >= b {
		return 100
	}
	p := new(big.Int).Quo(new(big.Int).Mul(big.NewInt(a), big.NewInt(100)), big.NewInt(b)).Int64()
	return int(max(1, p))
}

func windowWords(d time.Duration) string {
	switch d {
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "24 hours"
	case 7 * 24 * time.Hour:
		return "7 days"
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}

func (s *Server) payment(r ledger.Record) paymentView {
	v := paymentView{ID: r.ID, Time: r.Created.UTC().Format("2006-01-02 15:04:05"),
		Amount: tokens.FormatUnits(r.Amount, r.Decimals), Token: x402.Display(r.Token, 32),
		Network: x402.Display(r.Network, 64), Host: x402.Display(r.Host, 255), PayTo: r.PayTo.Hex(),
		State: stateWord(r), Tx: x402.Display(r.Transaction, 80), Note: x402.DisplayRunes(r.Note, 300)}
	if u := s.opts.Explorers[r.Network]; u != "" && isTxHash(r.Transaction) {
		v.TxURL = u + r.Transaction
	}
	return v
}

// stateWord is a record's state as the operator reads it: a failed record
// that was once unknown, and that the chain (or the passing of its
// validity) proved can never be settled, was released, not failed — its
// budget came back. Reconcile's notes say which (ledger/reconcile.go).
func stateWord(r ledger.Record) string {
	if r.State == ledger.Failed && (strings.HasPrefix(r.Note, "released") || strings.HasPrefix(r.Note, "unused per authorizationState")) {
		return "released"
	}
	return string(r.State)
}

// isTxHash accepts only a 32-byte 0x-hex hash, the one thing appended to
// an explorer's URL.
func isTxHash(s string) bool {
	if len(s) != 66 || !strings.HasPrefix(s, "0x") {
		return false
	}
	for _, c := range s[2:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// share is one row of a breakdown: a name, its spending, and a bar.
type share struct {
	Name    string
	USD     string
	Count   int
	Percent int // of the largest row
}

// shares sums the counted payments of the last 30 days by key, largest
// first, at most 10 rows.
func shares(counted []ledger.Record, key func(ledger.Record) string) []share {
	sum := map[string]int64{}
	count := map[string]int{}
	for _, r := range counted {
		k := key(r)
		sum[k] = addSat(sum[k], r.USDNano)
		count[k]++
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if sum[keys[i]] != sum[keys[j]] {
			return sum[keys[i]] > sum[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > 10 {
		keys = keys[:10]
	}
	var out []share
	for _, k := range keys {
		out = append(out, share{Name: k, USD: ledger.FormatUSDNano(sum[k]), Count: count[k], Percent: percent(sum[k], sum[keys[0]])})
	}
	return out
}

// addSat adds nano-USD, saturating instead of overflowing.
func addSat(a, b int64) int64 {
	if b > 0 && a > 1<<63-1-b {
		return 1<<63 - 1
	}
	return a + b
}

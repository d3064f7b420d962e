package policy

import (
	"fmt"
	"sort"
	"time"
)

// Periods holds spending limits over rolling windows, in USD; an unset one
// is no limit. The windows end at the moment of the payment ("in any 24
// hours", not "per calendar day"), so there is no time zone to get wrong
// and no midnight reset that would allow twice the limit across it.
type Periods struct {
	Hour  USD
	Day   USD
	Week  USD
	Month USD // 30 days
	Total USD // the lifetime of the ledger
}

// Budget is one spending limit for the ledger to enforce: the sum of
// payments in the window ending now (or ever, for Window 0), for one host
// or all, plus the new payment, must not exceed Limit.
type Budget struct {
	// Period is "hour", "day", "week", "month" or "total".
	Period string
	// Window is the length of the rolling window; 0 means lifetime.
	Window time.Duration
	// Host is a normalised host name (see NormalizeHost); "" means all
	// hosts together.
	Host  string
	Limit USD
}

// period is one of the windows a budget can cover, in the order they are
// listed everywhere (file, Budgets, Describe).
type period struct {
	name      string
	window    time.Duration
	words     string // completes "at most 5.00 USD …"
	adjective string // names it: "daily budget"
	field     func(*Periods) *USD
}

var periods = []period{
	{"hour", time.Hour, "in any hour", "hourly", func(p *Periods) *USD { return &p.Hour }},
	{"day", 24 * time.Hour, "in any 24 hours", "daily", func(p *Periods) *USD { return &p.Day }},
	{"week", 7 * 24 * time.Hour, "in any 7 days", "weekly", func(p *Periods) *USD { return &p.Week }},
	{"month", 30 * 24 * time.Hour, "in any 30 days", "monthly (30 days)", func(p *Periods) *USD { return &p.Month }},
	{"total", 0, "in total, ever", "lifetime", func(p *Periods) *USD { return &p.Total }},
}

// periodOf is the period whose window is w; lifetime for any other.
func periodOf(w time.Duration) period {
	for _, per := range periods {
		if per.window == w {
			return per
		}
	}
	return periods[len(periods)-1]
}

// Name words the budget for messages: "daily budget", or "daily budget
// for api.example.com" for a host's.
func (b Budget) Name() string {
	name := periodOf(b.Window).adjective + " budget"
	if b.Host != "" {
		name += " for " + b.Host
	}
	return name
}

// BudgetKey is the policy-file key that sets the budget of the given
// window (0: lifetime) for host ("": all hosts): "budget.day", or
// `hosts.budget."api.example.com".day`.
func BudgetKey(window time.Duration, host string) string {
	name := periodOf(window).name
	if host != "" {
		return fmt.Sprintf("hosts.budget.%q.%s", host, name)
	}
	return "budget." + name
}

// IsSet reports whether any limit is set.
func (ps Periods) IsSet() bool {
	for _, per := range periods {
		if per.field(&ps).IsSet() {
			return true
		}
	}
	return false
}

func (ps Periods) budgets(host string) []Budget {
	var out []Budget
	for _, per := range periods {
		if u := *per.field(&ps); u.IsSet() {
			out = append(out, Budget{Period: per.name, Window: per.window, Host: host, Limit: u})
		}
	}
	return out
}

// Budgets lists every spending limit the ledger must enforce: the global
// ones (hour, day, week, month, total) and then each host's, hosts in
// name order. This package only declares them; it keeps no record of what
// was spent.
func (p Policy) Budgets() []Budget {
	out := p.Budget.budgets("")
	for _, h := range p.budgetHosts() {
		out = append(out, p.HostBudgets[h].budgets(h)...)
	}
	return out
}

func (p Policy) budgetHosts() []string {
	hosts := make([]string, 0, len(p.HostBudgets))
	for h := range p.HostBudgets {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	return hosts
}

// Package humantime words times and durations for people reading a table
// or a page: the CLI's approvals and the operator console say them alike.
package humantime

import (
	"fmt"
	"time"
)

// Stamp is t in UTC to the second: "2026-12-03 06:14:00 UTC".
func Stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// Relative says when t is from now, roughly: "in 14m", "3m ago".
func Relative(now, t time.Time) string {
	if d := t.Sub(now); d > 0 {
		return "in " + Roughly(d)
	}
	return Roughly(now.Sub(t)) + " ago"
}

// Roughly renders a duration at the precision a human reading a table
// needs.
func Roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

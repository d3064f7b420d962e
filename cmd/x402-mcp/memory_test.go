package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestTuneMemory checks that serve's runtime settings apply by default and
// give way to the user's GOGC, GOMEMLIMIT and GODEBUG=memprofilerate.
func TestTuneMemory(t *testing.T) {
	rate, percent := runtime.MemProfileRate, debug.SetGCPercent(100)
	t.Cleanup(func() {
		runtime.MemProfileRate = rate
		debug.SetGCPercent(percent)
	})
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}

	for _, user := range []map[string]string{
		{"GOGC": "100", "GODEBUG": "gctrace=1,memprofilerate=4096"},
		{"GOMEMLIMIT": "64MiB", "GODEBUG": "memprofilerate=4096"},
	} {
		runtime.MemProfileRate = 4096
		debug.SetGCPercent(100)
		tuneMemory(env(user))
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("with %v: GOGC became %d, want the user's 100", user, got)
		}
		if runtime.MemProfileRate != 4096 {
			t.Errorf("with %v: MemProfileRate became %d, want the user's 4096", user, runtime.MemProfileRate)
		}
	}

	runtime.MemProfileRate = 4096
	tuneMemory(env(nil))
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Errorf("GOGC is %d, want %d", got, serveGCPercent)
	}
	if runtime.MemProfileRate != 0 {
		t.Errorf("MemProfileRate is %d, want 0", runtime.MemProfileRate)
	}
}

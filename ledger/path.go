package ledger

import (
	"errors"
	"os"
	"path"
	"runtime"
	"strings"
)

// DefaultPath returns where the ledger lives unless configured otherwise,
// in the user's data directory (not the cache: the ledger must not be
// cleaned away):
//
//   - Linux, BSD: $XDG_DATA_HOME/x402-mcp/ledger.db, else
//     ~/.local/share/x402-mcp/ledger.db
//   - macOS: ~/Library/Application Support/x402-mcp/ledger.db
//   - Windows: %LocalAppData%\x402-mcp\ledger.db (local, not roaming:
//     SQLite's locking does not work over a network share)
//
// Like os.UserConfigDir, it follows XDG only where XDG is the convention.
func DefaultPath() (string, error) {
	return defaultPath(runtime.GOOS, os.Getenv)
}

func defaultPath(goos string, getenv func(string) string) (string, error) {
	switch goos {
	case "windows":
		dir := getenv("LocalAppData")
		if dir == "" {
			return "", errors.New("ledger: %LocalAppData% is not set; configure the ledger path explicitly")
		}
		return strings.TrimRight(dir, `\/`) + `\x402-mcp\ledger.db`, nil
	case "darwin", "ios":
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("ledger: $HOME is not set; configure the ledger path explicitly")
		}
		return path.Join(home, "Library", "Application Support", "x402-mcp", "ledger.db"), nil
	default:
		// The XDG spec says a relative value is invalid and must be ignored.
		if dir := getenv("XDG_DATA_HOME"); strings.HasPrefix(dir, "/") {
			return path.Join(dir, "x402-mcp", "ledger.db"), nil
		}
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("ledger: neither $XDG_DATA_HOME nor $HOME is set; configure the ledger path explicitly")
		}
		return path.Join(home, ".local", "share", "x402-mcp", "ledger.db"), nil
	}
}

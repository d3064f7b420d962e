package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// IdentityError is a ledger that is missing or empty (Found == "") or that is not
// the one whose id IDFile holds. It matches ErrIdentity.
type IdentityError struct {
	Path   string // the ledger
	IDFile string // where its identity is kept
	Want   string // the id in IDFile
	Found  string // the id in the file at Path; "" when there is no file
}

func (e *IdentityError) Error() string {
	rm := "rm " + quote(e.IDFile)
	if runtime.GOOS == "windows" {
		rm = "del " + quote(e.IDFile)
	}
	if e.Found == "" {
		return fmt.Sprintf("ledger: %s is missing or empty, but a ledger was created there (id %s, kept in %s): deleted, moved, or on a disk that is not mounted; "+
			"put it back, or, to start over with an empty ledger that remembers no past spending, run %s", e.Path, e.Want, e.IDFile, rm)
	}
	return fmt.Sprintf("ledger: %s is ledger %s, not ledger %s that was created there (kept in %s); "+
		"put the original back, or, to adopt this one and forget the other, run %s", e.Path, e.Found, e.Want, e.IDFile, rm)
}

// Is makes errors.Is(err, ErrIdentity) true.
func (e *IdentityError) Is(target error) bool { return target == ErrIdentity }

// IDFilePath is where the identity of the ledger at ledgerPath is kept:
// a file named after a hash of the ledger's absolute path, in the user's
// state directory, apart from any ledger's directory, so that deleting a
// ledger, or the whole directory that holds it, leaves it behind:
//
//   - Linux, BSD: $XDG_STATE_HOME/x402-mcp/ledger-ids/, else
//     ~/.local/state/x402-mcp/ledger-ids/
//   - macOS: ~/Library/Application Support/x402-mcp-ledger-ids/
//   - Windows: %LocalAppData%\x402-mcp-ledger-ids\
//
// Two configurations with two ledgers have two identity files.
func IDFilePath(ledgerPath string) (string, error) {
	abs, err := filepath.Abs(ledgerPath)
	if err != nil {
		return "", fmt.Errorf("ledger: %w", err)
	}
	dir, err := idDir(runtime.GOOS, os.Getenv)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])+".id"), nil
}

func idDir(goos string, getenv func(string) string) (string, error) {
	switch goos {
	case "windows":
		dir := getenv("LocalAppData")
		if dir == "" {
			return "", errors.New("ledger: %LocalAppData% is not set")
		}
		return filepath.Join(dir, "x402-mcp-ledger-ids"), nil
	case "darwin", "ios":
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("ledger: $HOME is not set")
		}
		return filepath.Join(home, "Library", "Application Support", "x402-mcp-ledger-ids"), nil
	default:
		if dir := getenv("XDG_STATE_HOME"); strings.HasPrefix(dir, "/") {
			return filepath.Join(dir, "x402-mcp", "ledger-ids"), nil
		}
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("ledger: neither $XDG_STATE_HOME nor $HOME is set")
		}
		return filepath.Join(home, ".local", "state", "x402-mcp", "ledger-ids"), nil
	}
}

// readIDFile returns the ledger id an identity file holds (its first
// line), or "" when there is no such file.
func readIDFile(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("ledger: identity file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("ledger: identity file: %w", err)
	}
	id, _, _ := strings.Cut(string(b), "\n")
	if id = strings.TrimSpace(id); id == "" {
		return "", fmt.Errorf("ledger: identity file %s is empty; delete it if no ledger was ever used at the path it names", path)
	}
	return id, nil
}

// writeIDFile records id for the ledger at ledgerPath, unless the file
// exists; it returns the id the file holds then. It is created complete
// (a temporary file linked into place): a process racing to create the
// same ledger never reads a half-written one.
func writeIDFile(path, ledgerPath, id string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("ledger: identity file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("ledger: identity file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = fmt.Fprintf(tmp, "%s\n%s\n", id, ledgerPath)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("ledger: identity file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readIDFile(path)
		}
		return "", fmt.Errorf("ledger: identity file: %w", err)
	}
	return id, nil
}

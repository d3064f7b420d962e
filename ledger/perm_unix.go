//go:build unix

package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkAccess refuses a ledger file (or its -wal, -shm) or directory that
// another user could write: whoever can write the ledger can rewrite what
// it says was spent. A file that does not exist passes (the -wal and -shm
// files come and go). The directory counts because whoever can write it
// can replace the file; root may own it (root can do anything anyway), but
// the file itself must be the current user's.
func checkAccess(path, what string, dir bool) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	uid := os.Getuid()
	owner := uid
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		owner = int(sys.Uid)
	}
	perm := st.Mode().Perm()
	switch {
	case owner != uid && !(dir && owner == 0):
		return &AccessError{Path: path, msg: fmt.Sprintf("%s %s belongs to uid %d, not to you (uid %d); run x402-mcp as its owner, or take it over: sudo chown %d %s",
			what, path, owner, uid, uid, quote(path))}
	case perm&0o022 != 0 && owner != uid:
		// A shared directory such as /tmp: chmod is not ours to run.
		return &AccessError{Path: path, msg: fmt.Sprintf("%s %s is writable by group or others (mode %04o); keep the ledger in a directory only you can write, such as the default location",
			what, path, perm)}
	case perm&0o022 != 0 && dir:
		return &AccessError{Path: path, msg: fmt.Sprintf("%s %s is writable by group or others (mode %04o); run chmod go-w %s", what, path, perm, quote(path))}
	case perm&0o022 != 0:
		return &AccessError{Path: path, msg: fmt.Sprintf("%s %s is writable by group or others (mode %04o); run chmod 600 %s", what, path, perm, quote(path))}
	}
	return nil
}

//go:build unix

package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Whatever the umask, a new ledger is 0600 in a 0700 directory.
func TestCreatedPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "new dir", "ledger.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustReserve(t, l, rec("a.example", 1))
	defer l.Close()
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, st.Mode().Perm(), want)
		}
	}
}

// A ledger others could write is refused, with the chmod that fixes it.
func TestRefusesWritableByOthers(t *testing.T) {
	for _, c := range []struct {
		name   string
		target func(path string) string
		mode   os.FileMode
		hint   string
	}{
		{"file g+w", func(p string) string { return p }, 0o620, "chmod 600 "},
		{"file o+w", func(p string) string { return p }, 0o602, "chmod 600 "},
		{"wal o+w", func(p string) string { return p + "-wal" }, 0o606, "chmod 600 "},
		{"directory g+w", filepath.Dir, 0o770, "chmod go-w "},
		{"directory o+w", filepath.Dir, 0o703, "chmod go-w "},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "my ledger", "ledger.db")
			spendSome(t, path, Options{})
			if err := os.WriteFile(path+"-wal", nil, 0o600); err != nil && c.name == "wal o+w" {
				t.Fatal(err)
			}
			target := c.target(path)
			if err := os.Chmod(target, c.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, Options{})
			var ae *AccessError
			if !errors.As(err, &ae) || !errors.Is(err, ErrInsecure) || ae.Path != target {
				t.Fatalf("Open: %v", err)
			}
			if want := c.hint + quote(target); !strings.HasSuffix(err.Error(), want) {
				t.Errorf("error %q does not end with %q", err, want)
			}
			if _, err := Repair(path); !errors.Is(err, ErrInsecure) {
				t.Errorf("Repair: %v", err)
			}
			if err := os.Chmod(target, c.mode&^0o022); err != nil {
				t.Fatal(err)
			}
			l, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("after the chmod: %v", err)
			}
			l.Close()
		})
	}
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/x402-mcp/x402-mcp/internal/redact"
)

// flagMessage words one of package flag's errors without the value.
func flagMessage(fs *flag.FlagSet, err error) string {
	text := err.Error()
	var name string
	switch {
	case strings.HasPrefix(text, "invalid value ") || strings.HasPrefix(text, "invalid boolean value "):
		// "invalid value %q for flag -%s: %v" and "invalid boolean value
		// %q for -%s: %v": the name follows the last " -" before ":".
		if i := strings.LastIndex(text, " -"); i >= 0 {
			name, _, _ = strings.Cut(text[i+2:], ":")
		}
		want := "another value"
		if f := fs.Lookup(name); f != nil {
			want = expected(f)
		}
		return fmt.Sprintf("invalid value for -%s %s: expected %s", name, redact.NotShown, want)
	case strings.HasPrefix(text, "flag provided but not defined: -"):
		name = strings.TrimPrefix(text, "flag provided but not defined: -")
		if redact.LooksSecret(name) {
			return "an argument looks like a private key; it is not shown\n\thint: a key is never given on the command line; name a key file in the config"
		}
		return fmt.Sprintf("flag provided but not defined: -%s", redact.Scrub(name))
	case strings.HasPrefix(text, "bad flag syntax: "):
		return "bad flag syntax (argument not shown)"
	}
	return redact.Scrub(text)
}

// expected says what a flag takes, for a message about a bad value.
// Only package flag's typed values can fail; a string flag never does.
func expected(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "a valid value"
	}
	switch g.Get().(type) {
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	case time.Duration:
		return "a duration such as 30s"
	}
	return "a valid value"
}

// openSecretError words a failure to open a file that holds a secret (the
// HTTP bearer token, a passphrase). The path is not shown when the file
// does not exist: what was typed there may be the secret itself, pasted
// in place of its file's path, and a token or passphrase has no shape to
// recognise it by. A path to a file that exists is a path, and is shown.
func openSecretError(prefix, what, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is the caller's to show or not
	}
	if errors.Is(err, fs.ErrNotExist) || redact.LooksSecret(path) {
		return fmt.Errorf("%scannot open the %s: %w (the path given is not shown, in case it is the secret itself)\n\thint: give the path of the %s", prefix, what, err, what)
	}
	return fmt.Errorf("%scannot open the %s %s: %w", prefix, what, path, err)
}

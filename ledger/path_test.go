package ledger

import (
	"runtime"
	"testing"
)

func TestDefaultPath(t *testing.T) {
	cases := []struct {
		goos string
		env  map[string]string
		want string // "" = error
	}{
		{"linux", map[string]string{"HOME": "/home/u"}, "/home/u/.local/share/x402-mcp/ledger.db"},
		{"linux", map[string]string{"HOME": "/home/u", "XDG_DATA_HOME": "/data"}, "/data/x402-mcp/ledger.db"},
		{"linux", map[string]string{"HOME": "/home/u", "XDG_DATA_HOME": "rel/dir"}, "/home/u/.local/share/x402-mcp/ledger.db"},
		{"freebsd", map[string]string{"HOME": "/usr/home/u"}, "/usr/home/u/.local/share/x402-mcp/ledger.db"},
		{"linux", map[string]string{}, ""},
		{"darwin", map[string]string{"HOME": "/Users/u", "XDG_DATA_HOME": "/data"}, "/Users/u/Library/Application Support/x402-mcp/ledger.db"},
		{"darwin", map[string]string{}, ""},
		{"windows", map[string]string{"LocalAppData": `C:\Users\u\AppData\Local`}, `C:\Users\u\AppData\Local\x402-mcp\ledger.db`},
		{"windows", map[string]string{"LocalAppData": `C:\Users\u\AppData\Local\`}, `C:\Users\u\AppData\Local\x402-mcp\ledger.db`},
		{"windows", map[string]string{"HOME": `C:\Users\u`}, ""},
	}
	for _, c := range cases {
		got, err := defaultPath(c.goos, func(k string) string { return c.env[k] })
		if c.want == "" {
			if err == nil {
				t.Errorf("%s %v: %q, want an error", c.goos, c.env, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s %v: %q, %v; want %q", c.goos, c.env, got, err, c.want)
		}
	}
}

// The exported function reads the real environment of the running OS.
func TestDefaultPathFromEnv(t *testing.T) {
	switch runtime.GOOS {
	case "windows":
		t.Setenv("LocalAppData", `C:\la`)
		if got, _ := DefaultPath(); got != `C:\la\x402-mcp\ledger.db` {
			t.Fatal(got)
		}
	case "darwin", "ios":
		t.Setenv("HOME", "/Users/t")
		if got, _ := DefaultPath(); got != "/Users/t/Library/Application Support/x402-mcp/ledger.db" {
			t.Fatal(got)
		}
	default:
		t.Setenv("XDG_DATA_HOME", "/xdg")
		if got, _ := DefaultPath(); got != "/xdg/x402-mcp/ledger.db" {
			t.Fatal(got)
		}
		t.Setenv("XDG_DATA_HOME", "")
		t.Setenv("HOME", "/home/t")
		if got, _ := DefaultPath(); got != "/home/t/.local/share/x402-mcp/ledger.db" {
			t.Fatal(got)
		}
	}
}

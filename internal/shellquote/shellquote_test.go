package shellquote

import "testing"

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, goos, want string }{
		{"/home/u/.config/x402-mcp/config.toml", "linux", "/home/u/.config/x402-mcp/config.toml"},
		{"/Users/u/Library/Application Support/x402-mcp", "darwin", "'/Users/u/Library/Application Support/x402-mcp'"},
		{"/tmp/it's", "linux", `'/tmp/it'\''s'`},
		{"", "linux", "''"},
		{"/tmp/$(rm -rf ~)", "linux", "'/tmp/$(rm -rf ~)'"},
		{`C:\Users\u\x402-mcp\config.toml`, "windows", `C:\Users\u\x402-mcp\config.toml`},
		{`C:\Program Files\x402-mcp.exe`, "windows", `"C:\Program Files\x402-mcp.exe"`},
	} {
		if got := quote(tc.in, tc.goos); got != tc.want {
			t.Errorf("quote(%q, %s) = %s, want %s", tc.in, tc.goos, got, tc.want)
		}
	}
}

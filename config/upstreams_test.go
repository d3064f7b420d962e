package config

import (
	"errors"
	"strings"
	"testing"
)

func TestUpstreams(t *testing.T) {
	c, err := Parse("/etc/x402/config.toml", []byte(`
[[upstreams]]
name = "paid"
url = "https://tools.example.com/mcp"
headers_file = "h.toml"

[[upstreams]]
name = "local-1"
command = "./server"
args = ["--stdio"]
timeout_seconds = 30
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Upstreams) != 2 || c.Upstreams[0].URL != "https://tools.example.com/mcp" || c.Upstreams[0].HeadersFile != "/etc/x402/h.toml" ||
		c.Upstreams[1].Command != "/etc/x402/server" || c.Upstreams[1].Args[0] != "--stdio" || c.Upstreams[1].Timeout.Seconds() != 30 {
		t.Errorf("upstreams: %+v", c.Upstreams)
	}

	for _, tc := range []struct{ doc, key, msg string }{
		{"[[upstreams]]\nurl = \"https://a.example/mcp\"\n", "upstreams[0].name", "needs a name"},
		{"[[upstreams]]\nname = \"Paid\"\nurl = \"https://a.example/mcp\"\n", "upstreams[0].name", "lower-case"},
		{"[[upstreams]]\nname = \"a__b\"\nurl = \"https://a.example/mcp\"\n", "upstreams[0].name", "lower-case"},
		{"[[upstreams]]\nname = \"p\"\n", "upstreams[0].name", "neither url nor command"},
		{"[[upstreams]]\nname = \"p\"\nurl = \"https://a.example/mcp\"\ncommand = \"x\"\n", "upstreams[0].command", "both url and command"},
		{"[[upstreams]]\nname = \"p\"\nurl = \"ftp://a.example/mcp\"\n", "upstreams[0].url", "not an http or https URL"},
		{"[[upstreams]]\nname = \"p\"\nurl = \"https://u:pw@a.example/mcp\"\n", "upstreams[0].url", "without user info"},
		{"[[upstreams]]\nname = \"p\"\ncommand = \"x\"\nheaders_file = \"h\"\n", "upstreams[0].headers_file", "stdio upstream"},
		{"[[upstreams]]\nname = \"p\"\nurl = \"https://a.example/mcp\"\n[[upstreams]]\nname = \"p\"\ncommand = \"x\"\n", "upstreams[1].name", "configured twice"},
		{"[[upstreams]]\nname = \"p\"\nurl = \"https://a.example/mcp\"\ntimeout_seconds = 601\n", "upstreams[0].timeout_seconds", "out of range"},
	} {
		_, err := Parse("c.toml", []byte(tc.doc))
		var e *Error
		if !errors.As(err, &e) || e.Key != tc.key || !strings.Contains(e.Msg, tc.msg) || e.Line == 0 {
			t.Errorf("%q: got %v (%+v), want %s: …%s…", tc.doc, err, e, tc.key, tc.msg)
		}
	}
}

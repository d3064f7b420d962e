package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/x402-mcp/x402-mcp/policy"
)

// UpstreamEntry is one [[upstreams]] table: an MCP server whose tools
// x402-mcp re-exports as <name>__<tool>, paying for them through x402 when
// they ask.
type UpstreamEntry struct {
	Name           string   `toml:"name"`
	URL            string   `toml:"url"`
	Command        string   `toml:"command"`
	Args           []string `toml:"args"`
	HeadersFile    string   `toml:"headers_file"`
	TimeoutSeconds int64    `toml:"timeout_seconds"`
}

// Upstream is a checked [[upstreams]] entry.
type Upstream struct {
	Name string
	// URL is a streamable HTTP endpoint, Command (with Args) a program
	// speaking MCP on stdio: exactly one is set.
	URL     string
	Command string
	Args    []string
	// HeadersFile is a TOML file of header = "value" lines sent to URL,
	// resolved; it must not be accessible by group or others.
	HeadersFile string
	// Timeout bounds one call of an upstream tool; zero means the
	// default.
	Timeout time.Duration
}

// maxUpstreams bounds [[upstreams]]: each is a connection or a process.
const maxUpstreams = 16

func parseUpstreams(path, dir string, data []byte, lines map[string]int, entries []UpstreamEntry) ([]Upstream, error) {
	if len(entries) > maxUpstreams {
		return nil, &Error{Path: path, Line: tableLine(data, "upstreams", maxUpstreams), Key: "upstreams",
			Msg: fmt.Sprintf("more than %d upstreams", maxUpstreams), Hint: "configure fewer upstream MCP servers"}
	}
	var out []Upstream
	for i, e := range entries {
		at := func(key string) (int, string) {
			full := fmt.Sprintf("upstreams[%d].%s", i, key)
			if l := lines[full]; l > 0 {
				return l, full
			}
			return tableLine(data, "upstreams", i), full
		}
		fail := func(key, msg, hint string) error {
			line, full := at(key)
			return &Error{Path: path, Line: line, Key: full, Msg: msg, Hint: hint}
		}
		name := strings.TrimSpace(e.Name)
		switch {
		case name == "":
			return nil, fail("name", "an upstream needs a name", `add name = "paid": its tools appear as paid__<tool>`)
		case !policy.ValidMCPName(name):
			return nil, fail("name", "the name is not a lower-case letter followed by at most 31 lower-case letters, digits or \"-\"",
				`use a short name such as "paid" or "tools-1": its tools appear as <name>__<tool>`)
		}
		for _, u := range out {
			if u.Name == name {
				return nil, fail("name", fmt.Sprintf("upstream %s is configured twice", name), "give each upstream its own name")
			}
		}
		u := Upstream{Name: name, Args: e.Args}
		switch {
		case e.URL != "" && e.Command != "":
			return nil, fail("command", "both url and command are set", "an upstream is reached either over streamable HTTP (url) or as a program on stdio (command)")
		case e.URL == "" && e.Command == "":
			return nil, fail("name", "the upstream has neither url nor command", `add url = "https://…/mcp" or command = "/path/to/server"`)
		case e.URL != "":
			p, err := url.Parse(e.URL)
			if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil {
				return nil, fail("url", "the url is not an http or https URL without user info", `write the server's MCP endpoint, such as "https://tools.example.com/mcp"`)
			}
			if _, err := policy.NormalizeHost(p); err != nil {
				return nil, fail("url", "the url's host cannot be judged by the policy: "+err.Error(), "")
			}
			if len(e.Args) > 0 {
				return nil, fail("args", "args is set for an HTTP upstream", "args are for a command; remove them")
			}
			u.URL = e.URL
		default:
			u.Command = resolveCommand(dir, strings.TrimSpace(e.Command))
			if e.HeadersFile != "" {
				return nil, fail("headers_file", "headers_file is set for a stdio upstream", "headers go to HTTP upstreams only; remove it")
			}
		}
		if e.HeadersFile != "" {
			u.HeadersFile = resolve(dir, e.HeadersFile)
		}
		if s := e.TimeoutSeconds; s < 0 || s > 600 {
			return nil, fail("timeout_seconds", outOfRange, "use 1 to 600 seconds (the default is 60)")
		}
		u.Timeout = time.Duration(e.TimeoutSeconds) * time.Second
		out = append(out, u)
	}
	return out, nil
}

// resolveCommand resolves a command given as a relative path ("./server")
// against the config file's directory; a bare name is looked up on PATH
// when it is started.
func resolveCommand(dir, c string) string {
	if strings.ContainsRune(c, '/') {
		return resolve(dir, c)
	}
	return c
}

package main

import (
	"runtime/debug"
	"strings"
)

// version is the release version, stamped by scripts/release.sh with
// -ldflags "-X main.version=v1.2.3". Unstamped, the module version from
// the build info stands in (v1.2.3 for `go install …@v1.2.3`), else
// "devel".
var version = ""

// buildVersion is the version this binary reports, in versionLine and as
// the MCP serverInfo.version: the release version, else the module's,
// else "devel", with "+REVISION" (12 hex digits) unless the version names
// it already (a pseudo-version does), and "+dirty" for a build from a
// checkout with uncommitted changes.
func buildVersion() string {
	v, rev, dirty, _, _ := buildInfo()
	if rev != "" && !strings.Contains(v, rev) {
		v += "+" + rev
	}
	if dirty && !strings.HasSuffix(v, "+dirty") {
		v += "+dirty"
	}
	return v
}

// versionLine is what `x402-mcp version` prints after the name.
func versionLine() string {
	v, rev, dirty, when, goVersion := buildInfo()
	var b strings.Builder
	b.WriteString(v)
	if rev != "" {
		b.WriteString(" (revision " + rev)
		if dirty {
			b.WriteString(", with uncommitted changes")
		}
		if when != "" {
			b.WriteString(", committed " + when)
		}
		b.WriteString(")")
	}
	b.WriteString(", built with " + goVersion)
	return b.String()
}

func buildInfo() (v, rev string, dirty bool, when, goVersion string) {
	v = version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if v == "" {
			v = "devel"
		}
		return v, "", false, "", "an unknown Go version"
	}
	goVersion = info.GoVersion
	if v == "" {
		v = info.Main.Version
		if v == "" || v == "(devel)" {
			v = "devel"
		}
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		case "vcs.time":
			when = s.Value
		}
	}
	return v, rev, dirty, when, goVersion
}

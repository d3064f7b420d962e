package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestBuildOnePlatform builds the release for this machine's platform and
// checks every artifact: the archive holds a binary that reports the
// stamped version, the bundle holds a manifest that starts that binary with
// the user's config and the binary itself, server.json names the bundle
// with its true SHA-256, and SHA256SUMS agrees with every file.
// (CI builds all six platforms with scripts/release.sh and validates the
// bundles with the MCP bundle tool.)
func TestBuildOnePlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	p := Platform{runtime.GOOS, runtime.GOARCH}
	out := filepath.Join(t.TempDir(), "dist")
	arts, err := Build(Options{Version: "v1.2.3-rc.1", Module: moduleRoot(t), Out: out, Platforms: []Platform{p}})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]Artifact{}
	for _, a := range arts {
		names[a.Name] = a
	}
	base := "x402-mcp_1.2.3-rc.1_" + p.GOOS + "_" + p.GOARCH
	archive, bundle := base+".tar.gz", base+".mcpb"
	if p.GOOS == "windows" {
		archive = base + ".zip"
	}
	for _, want := range []string{archive, bundle, "server.json"} {
		if _, ok := names[want]; !ok {
			t.Fatalf("no %s among %v", want, arts)
		}
	}

	// SHA256SUMS lists every file with its true hash.
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, _ := strings.Cut(line, "  ")
		if got := fileSum(t, filepath.Join(out, name)); got != sum {
			t.Errorf("SHA256SUMS says %s for %s, the file hashes to %s", sum, name, got)
		}
	}
	if n := len(strings.Split(strings.TrimSpace(string(sums)), "\n")); n != len(arts) {
		t.Errorf("SHA256SUMS has %d lines for %d artifacts", n, len(arts))
	}

	// The bundle: manifest and binary.
	zr, err := zip.OpenReader(filepath.Join(out, bundle))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	m := string(files["manifest.json"])
	entry := gjson.Get(m, "server.entry_point").String()
	if gjson.Get(m, "version").String() != "1.2.3-rc.1" || gjson.Get(m, "server.type").String() != "binary" || len(files[entry]) == 0 ||
		gjson.Get(m, "server.mcp_config.command").String() != "${__dirname}/"+entry ||
		fmt.Sprint(gjson.Get(m, "server.mcp_config.args").Value()) != "[serve --config ${user_config.config_file}]" ||
		gjson.Get(m, "user_config.config_file.type").String() != "file" || !gjson.Get(m, "user_config.config_file.required").Bool() ||
		gjson.Get(m, "compatibility.platforms.0").String() != mcpbPlatform(p.GOOS) {
		t.Errorf("manifest:\n%s\nfiles: %v", m, keys(files))
	}
	for _, doc := range []string{"LICENSE", "README.md", "SECURITY.md", "CHANGELOG.md"} {
		if len(files[doc]) == 0 {
			t.Errorf("the bundle lacks %s", doc)
		}
	}

	// server.json names the bundle at its download address, with its hash.
	sj, err := os.ReadFile(filepath.Join(out, "server.json"))
	if err != nil {
		t.Fatal(err)
	}
	pkg := gjson.GetBytes(sj, "packages.0")
	if gjson.GetBytes(sj, "name").String() != RegistryName || gjson.GetBytes(sj, "version").String() != "1.2.3-rc.1" ||
		len(gjson.GetBytes(sj, "description").String()) > 100 ||
		pkg.Get("registryType").String() != "mcpb" || pkg.Get("transport.type").String() != "stdio" ||
		pkg.Get("identifier").String() != Repository+"/releases/download/v1.2.3-rc.1/"+bundle ||
		pkg.Get("fileSha256").String() != names[bundle].SHA256 {
		t.Errorf("server.json:\n%s", sj)
	}

	// The archive's binary runs and reports the stamped version.
	if p.GOOS == "windows" {
		return
	}
	bin := extractTarGz(t, filepath.Join(out, archive), base+"/x402-mcp")
	path := filepath.Join(t.TempDir(), "x402-mcp")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := exec.Command(path, "version").Output()
	if err != nil || !strings.HasPrefix(string(v), "x402-mcp v1.2.3-rc.1, built with go") {
		t.Errorf("version of the released binary: %q, %v", v, err)
	}
	if !bytes.Equal(bin, files[entry]) {
		t.Error("the bundle's binary differs from the archive's")
	}
}

func TestBuildRefusals(t *testing.T) {
	for _, v := range []string{"1.2.3", "v1.2", "v01.2.3", "latest", "v1.2.3; rm -rf /"} {
		if _, err := Build(Options{Version: v, Module: ".", Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "semantic version") {
			t.Errorf("version %q: %v", v, err)
		}
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "old"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(Options{Version: "v1.0.0", Module: ".", Out: full}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a directory with files in it: %v", err)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func extractTarGz(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s: %v", name, path, err)
		}
		if h.Name == name {
			if h.Mode&0o111 == 0 {
				t.Errorf("%s is not executable (mode %o)", name, h.Mode)
			}
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

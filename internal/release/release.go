// Package release builds x402-mcp's release artifacts: static binaries for
// each platform, archives, MCP bundles (.mcpb) for Claude Desktop, the MCP
// registry's server.json naming those bundles, and SHA-256 checksums of
// everything. It publishes nothing. scripts/release.sh runs it.
package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Platform is one target of a release.
type Platform struct{ GOOS, GOARCH string }

// Platforms are the release targets: linux, darwin and windows on amd64
// and arm64.
var Platforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// Repository is where releases are published; the bundles' download
// addresses in server.json point there.
const Repository = "https://github.com/x402-mcp/x402-mcp"

// RegistryName is the server's name in the MCP registry.
const RegistryName = "io.github.x402-mcp/x402-mcp"

// Description is the one-line description the bundles and the registry
// show (the registry allows at most 100 characters).
const Description = "Pay for x402-priced HTTP APIs in USDC within the limits you set: caps, budgets and approval."

var versionRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// Options say what to build.
type Options struct {
	// Version is the release version, "v1.2.3" (a semantic version with
	// the leading v); it is stamped into the binaries.
	Version string
	// Module is the directory of the x402-mcp module.
	Module string
	// Out is the directory the artifacts are written to; it must not
	// exist yet, or be empty.
	Out string
	// Platforms defaults to Platforms.
	Platforms []Platform
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Artifact is one file of a release.
type Artifact struct {
	Name   string // file name in Out
	SHA256 string // hex
	Size   int64
}

// Build builds every artifact and returns them in the order they are
// listed in SHA256SUMS.
func Build(o Options) ([]Artifact, error) {
	if !versionRE.MatchString(o.Version) {
		return nil, fmt.Errorf("release: version %q is not a semantic version like v1.2.3", o.Version)
	}
	if len(o.Platforms) == 0 {
		o.Platforms = Platforms
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if entries, err := os.ReadDir(o.Out); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("release: %s is not empty; give a new directory", o.Out)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "x402-mcp-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	var bundles []bundleRef
	for _, p := range o.Platforms {
		exe := "x402-mcp"
		if p.GOOS == "windows" {
			exe += ".exe"
		}
		binPath := filepath.Join(work, p.GOOS+"-"+p.GOARCH, exe)
		fmt.Fprintf(o.Log, "building %s/%s\n", p.GOOS, p.GOARCH)
		if err := buildBinary(o, p, binPath); err != nil {
			return nil, err
		}
		bin, err := os.ReadFile(binPath)
		if err != nil {
			return nil, err
		}
		base := fmt.Sprintf("x402-mcp_%s_%s_%s", strings.TrimPrefix(o.Version, "v"), p.GOOS, p.GOARCH)
		docs, err := readDocs(o.Module)
		if err != nil {
			return nil, err
		}
		if p.GOOS == "windows" {
			err = writeZip(filepath.Join(o.Out, base+".zip"), append(docs, file{exe, bin, 0o755}))
		} else {
			err = writeTarGz(filepath.Join(o.Out, base+".tar.gz"), base, append(docs, file{exe, bin, 0o755}))
		}
		if err != nil {
			return nil, err
		}
		mcpbName := base + ".mcpb"
		manifest, err := manifest(o.Version, p)
		if err != nil {
			return nil, err
		}
		if err := writeZip(filepath.Join(o.Out, mcpbName), append(docs,
			file{"manifest.json", manifest, 0o644}, file{"server/" + exe, bin, 0o755})); err != nil {
			return nil, err
		}
		bundles = append(bundles, bundleRef{name: mcpbName, platform: p})
	}
	for i := range bundles {
		sum, _, err := hashFile(filepath.Join(o.Out, bundles[i].name))
		if err != nil {
			return nil, err
		}
		bundles[i].sha256 = sum
	}
	sj, err := serverJSON(o.Version, bundles)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Out, "server.json"), sj, 0o644); err != nil {
		return nil, err
	}
	return writeSums(o.Out)
}

type bundleRef struct {
	name     string
	platform Platform
	sha256   string
}

func buildBinary(o Options, p Platform, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+o.Version, "-o", out, "./cmd/x402-mcp")
	cmd.Dir = o.Module
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.GOOS, "GOARCH="+p.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("release: building %s/%s: %v\n%s", p.GOOS, p.GOARCH, err, b)
	}
	return nil
}

type file struct {
	name string
	data []byte
	mode os.FileMode
}

// readDocs are the files every archive and bundle carries.
func readDocs(module string) ([]file, error) {
	var out []file
	for _, name := range []string{"LICENSE", "README.md", "SECURITY.md", "CHANGELOG.md"} {
		b, err := os.ReadFile(filepath.Join(module, name))
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		out = append(out, file{name, b, 0o644})
	}
	return out, nil
}

// epoch is the modification time of every archived file, so that the same
// sources give the same archives.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func writeZip(path string, files []file) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: epoch}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(f.data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeTarGz(path, dir string, files []file) error {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	gz.ModTime = epoch
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/" + f.name, Mode: int64(f.mode), Size: int64(len(f.data)),
			ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// mcpbPlatform is the bundle format's name of a GOOS.
func mcpbPlatform(goos string) string {
	if goos == "windows" {
		return "win32"
	}
	return goos
}

// manifest is the .mcpb manifest for one platform: a binary server that
// Claude Desktop starts as `x402-mcp serve --config FILE`, FILE being the
// config the user picks when installing (one `x402-mcp init` wrote).
func manifest(version string, p Platform) ([]byte, error) {
	exe := "server/x402-mcp"
	if p.GOOS == "windows" {
		exe += ".exe"
	}
	m := map[string]any{
		"manifest_version": "0.3",
		"name":             "x402-mcp",
		"display_name":     "x402-mcp",
		"version":          strings.TrimPrefix(version, "v"),
		"description":      Description,
		"long_description": "x402-mcp lets the agent find priced HTTP APIs, see what they cost and pay per request in USDC through the x402 protocol, " +
			"while your spend policy decides how much may be spent, where and on what: a cap per payment, budgets, host rules and your approval above a threshold. " +
			"Run `x402-mcp init` first; it creates an encrypted key, a config and a policy. Then pick that config.toml when installing this bundle.",
		"author":     map[string]any{"name": "The x402-mcp Authors", "url": Repository},
		"repository": map[string]any{"type": "git", "url": Repository},
		"homepage":   Repository,
		"license":    "Apache-2.0",
		"keywords":   []string{"x402", "payments", "usdc", "http-402", "mcp"},
		"server": map[string]any{
			"type":        "binary",
			"entry_point": exe,
			"mcp_config": map[string]any{
				"command": "${__dirname}/" + exe,
				"args":    []string{"serve", "--config", "${user_config.config_file}"},
			},
		},
		"user_config": map[string]any{
			"config_file": map[string]any{
				"type":  "file",
				"title": "x402-mcp config file",
				"description": "The config.toml that `x402-mcp init` wrote (it names your encrypted key and your spend policy). " +
					"The key itself is never entered here.",
				"required": true,
			},
		},
		"compatibility": map[string]any{"platforms": []string{mcpbPlatform(p.GOOS)}},
		"tools": []map[string]string{
			{"name": "x402_discover", "description": "Find priced endpoints and their verdict under your policy"},
			{"name": "x402_quote", "description": "See what a resource costs, without paying"},
			{"name": "x402_fetch", "description": "Fetch a resource, paying within your policy"},
			{"name": "x402_wallet", "description": "The paying wallet and its balances"},
			{"name": "x402_spending", "description": "Limits, budgets left and recent payments"},
		},
	}
	return json.MarshalIndent(m, "", "  ")
}

// serverJSON is the MCP registry entry naming the bundles (schema
// 2025-12-11): one mcpb package per platform, downloaded from the
// release, with its SHA-256.
func serverJSON(version string, bundles []bundleRef) ([]byte, error) {
	var pkgs []map[string]any
	for _, b := range bundles {
		if len(b.sha256) != 64 {
			return nil, errors.New("release: a bundle without its SHA-256")
		}
		pkgs = append(pkgs, map[string]any{
			"registryType": "mcpb",
			"identifier":   Repository + "/releases/download/" + version + "/" + b.name,
			"version":      strings.TrimPrefix(version, "v"),
			"fileSha256":   b.sha256,
			"transport":    map[string]any{"type": "stdio"},
		})
	}
	return json.MarshalIndent(map[string]any{
		"$schema":     "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
		"name":        RegistryName,
		"title":       "x402-mcp",
		"description": Description,
		"version":     strings.TrimPrefix(version, "v"),
		"repository":  map[string]any{"url": Repository, "source": "github"},
		"websiteUrl":  Repository,
		"packages":    pkgs,
	}, "", "  ")
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// writeSums writes SHA256SUMS (the format of sha256sum) for every file in
// dir and returns them.
func writeSums(dir string) ([]Artifact, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Artifact
	var b strings.Builder
	for _, e := range entries {
		if e.IsDir() || e.Name() == "SHA256SUMS" {
			continue
		}
		sum, n, err := hashFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Artifact{Name: e.Name(), SHA256: sum, Size: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for _, a := range out {
		fmt.Fprintf(&b, "%s  %s\n", a.SHA256, a.Name)
	}
	return out, os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

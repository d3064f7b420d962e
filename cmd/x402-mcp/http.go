package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/internal/shellquote"
)

// Bounds of the HTTP transport. MCP messages are small; the largest is a
// tool call carrying a request body for x402_fetch.
const (
	maxTokenFile      = 4 << 10
	minTokenLength    = 32
	maxRequestBody    = 4 << 20
	maxRequestHeaders = 64 << 10
	// httpSessionIdle is how long an unused MCP session is kept; a client
	// that comes back later gets 404 and starts a new one, as the
	// transport specification says it must.
	httpSessionIdle = 24 * time.Hour
	// httpShutdownGrace lets a call in flight (a payment being settled)
	// finish when the server is asked to stop.
	httpShutdownGrace = 10 * time.Second
)

// httpOptions are serve's flags for the streamable HTTP transport.
type httpOptions struct {
	addr        string
	tokenFile   string
	allowRemote bool
}

// check validates the flags and reads the token.
func (o httpOptions) check() ([]byte, error) {
	if o.addr == "" {
		return nil, &exitError{code: 2, err: errors.New("--token-file and --allow-remote only apply with --http\n\thint: add --http 127.0.0.1:8402 to serve over HTTP")}
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("bad --http address %s: expected host:port\n\thint: give host:port, e.g. --http 127.0.0.1:8402", redact.NotShown)}
	}
	if !o.allowRemote && !isLoopbackName(host) {
		return nil, &exitError{code: 2, err: fmt.Errorf("--http %s would accept connections from other machines\n\thint: listen on 127.0.0.1:PORT, or add --allow-remote and terminate TLS in front of the server", o.addr)}
	}
	if o.tokenFile == "" {
		return nil, &exitError{code: 2, err: errors.New("--http needs --token-file: every HTTP request must carry a bearer token\n\thint: create one with: (umask 077; openssl rand -hex 32 > ~/.config/x402-mcp/http-token), then pass --token-file ~/.config/x402-mcp/http-token")}
	}
	return readToken(o.tokenFile)
}

// isLoopbackName reports whether a --http host can only be reached from
// this machine. An empty host means every interface.
func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// readToken reads the bearer token. The file is held to the rule of key
// files: anyone who can read the token can spend within the operator's
// budgets. The buffer is read at its final size so that no stray copy of
// the token is left behind by a growing read.
func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openSecretError("", "token file", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat token file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("token file %s is not a regular file\n\thint: give the path of the file holding the token", path)
	}
	// Windows has no group/other mode bits (Go reports 0666); it relies on
	// ACLs instead, as the key files do.
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("token file %s is accessible by group or others (mode %04o)\n\thint: run chmod 600 %s", path, perm, shellquote.Quote(path))
	}
	buf := make([]byte, maxTokenFile+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		clear(buf)
		return nil, fmt.Errorf("cannot read token file %s: %w", path, err)
	}
	if n > maxTokenFile {
		clear(buf)
		return nil, fmt.Errorf("token file %s is larger than %d bytes\n\thint: check that the path names the token file", path, maxTokenFile)
	}
	tok := bytes.TrimSpace(buf[:n])
	for _, c := range tok {
		if c < 0x21 || c > 0x7e {
			clear(buf)
			return nil, fmt.Errorf("token file %s holds a space, control or non-ASCII character, which an HTTP header cannot carry\n\thint: use a random hex token: openssl rand -hex 32", path)
		}
	}
	if len(tok) < minTokenLength {
		clear(buf)
		return nil, fmt.Errorf("token file %s holds %d characters; at least %d are needed\n\thint: use a random token: (umask 077; openssl rand -hex 32 > %s)", path, len(tok), minTokenLength, shellquote.Quote(path))
	}
	return tok, nil
}

// serveHTTP serves s over MCP streamable HTTP until ctx ends. Every request
// must carry the bearer token; mcp-go's DNS-rebinding protection (a
// loopback connection with a non-loopback Host header is refused) stays on.
func serveHTTP(ctx context.Context, s *server.MCPServer, o httpOptions, token []byte, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.addr, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() {
		if !o.allowRemote {
			// "localhost" resolved to something else than loopback.
			ln.Close()
			return &exitError{code: 2, err: fmt.Errorf("--http %s listens on %s, which is not loopback\n\thint: listen on 127.0.0.1:PORT, or add --allow-remote and terminate TLS in front of the server", o.addr, addr)}
		}
		logger.Warn("listening beyond this machine: terminate TLS in front of x402-mcp (a reverse proxy); without it the bearer token and every tool result cross the network in clear", "addr", addr.String())
	}
	httpSrv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: a tool call may wait for a human's approval and
		// a session's event stream stays open.
		ReadTimeout:    time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: maxRequestHeaders,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	stream := server.NewStreamableHTTPServer(s,
		// Sessions are tracked, so a made-up session id is refused rather
		// than accepted by its format alone.
		server.WithSessionIdManager(&server.InsecureStatefulSessionIdManager{}),
		server.WithSessionIdleTTL(httpSessionIdle),
		server.WithHeartbeatInterval(30*time.Second),
		server.WithStreamableHTTPLogger(logger),
		server.WithStreamableHTTPServer(httpSrv),
	)
	mux := http.NewServeMux()
	mux.Handle("/mcp", stream)
	httpSrv.Handler = requireBearer(token, logger, mux)

	logger.Info("listening on http://"+addr.String()+"/mcp", "version", buildVersion())
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownGrace)
	defer cancel()
	if err := stream.Shutdown(sctx); err != nil {
		logger.Warn("http: shutdown did not finish in time; closing connections", "err", err)
		httpSrv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	return nil
}

// requireBearer admits a request only with "Authorization: Bearer <token>"
// and, from a browser, a loopback or same-host Origin; everything else is
// answered here and never reaches MCP, so it cannot open a session.
func requireBearer(token []byte, logger *slog.Logger, next http.Handler) http.Handler {
	// Comparing digests keeps the comparison constant-time in the length
	// of the token too.
	want := sha256.Sum256(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearerToken(r.Header.Values("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok {
			logger.Warn("http: refused a request without a valid bearer token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="x402-mcp"`)
			http.Error(w, "unauthorized: send Authorization: Bearer <the token in the server's --token-file>", http.StatusUnauthorized)
			return
		}
		// The MCP transport specification asks servers to check Origin:
		// a browser page must not drive the server even if it learnt
		// the token.
		if o := r.Header.Get("Origin"); o != "" && !originAllowed(o, r.Host) {
			logger.Warn("http: refused a request from a foreign origin", "remote", r.RemoteAddr, "origin", o)
			http.Error(w, "forbidden: origin not allowed", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		next.ServeHTTP(w, r)
	})
}

// bearerToken extracts the credentials of a single "Bearer" Authorization
// header; the scheme name is case-insensitive (RFC 9110 §11.1).
func bearerToken(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, cred, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimLeft(cred, " ")
	return cred, cred != ""
}

// originAllowed accepts an Origin naming this machine or the host the
// request was sent to.
func originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return isLoopbackName(strings.Trim(u.Hostname(), "[]")) || strings.EqualFold(u.Host, host)
}

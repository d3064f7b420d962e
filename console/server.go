package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"github.com/x402-mcp/x402-mcp/internal/humantime"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/x402"
)

//go:embed assets
var assets embed.FS

// pages are the console's HTML templates, parsed on first use rather than
// at package init: every x402-mcp process links the console, few open it,
// and parsing them at init delayed each server's start (issue 10, goal 3).
// New parses them, so a console with a broken template still fails before
// it serves; TestPagesParse catches one in the tree.
var pages = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").ParseFS(assets, "assets/*.html"))
})

// Bounds of what a browser may send.
const (
	maxBody    = 8 << 10 // a form holds an id, a token and a CSRF token
	maxHeaders = 16 << 10
	// pollEvery is how often a live page's event stream looks at the
	// ledger, which other processes write.
	pollEvery = time.Second
)

// csp is the Content-Security-Policy of every response: nothing inline,
// nothing from elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Options configure a Server.
type Options struct {
	// Ledger is the ledger the servers share; the console reads it and
	// records decisions on approvals in it.
	Ledger *ledger.Ledger
	// Policy is the policy in force, whose budgets are shown.
	Policy policy.Policy
	// Explorers maps a network (CAIP-2) to its explorer's transaction URL
	// prefix; a network without one gets no links.
	Explorers map[string]string
	// Token is the token file's token (see TokenFile), a second way to
	// log in; "" allows only the one-time code.
	Token string
	// AllowRemote admits a Host header other than this machine's names,
	// for a console behind a TLS-terminating proxy.
	AllowRemote bool
	Logger      *slog.Logger
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// Server is the console's HTTP handler.
type Server struct {
	opts Options
	auth *auth
	now  func() time.Time
	mux  *http.ServeMux
	done chan struct{} // closed by Close: event streams end
}

// New makes a console server.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pages()
	s := &Server{opts: opts, now: opts.Now, auth: newAuth(opts.Token, opts.Now), mux: http.NewServeMux(), done: make(chan struct{})}
	static, _ := fs.Sub(assets, "assets")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.loginToken)
	s.mux.HandleFunc("POST /logout", s.withSession(s.logout))
	s.mux.HandleFunc("GET /{$}", s.withSession(s.home))
	s.mux.HandleFunc("GET /events", s.withSession(s.events))
	s.mux.HandleFunc("POST /approvals/{id}/{verb}", s.withSession(s.decide))
	return s
}

// LoginURL makes a one-time login code and returns the URL that uses it,
// for the operator's terminal; base is "http://host:port".
func (s *Server) LoginURL(base string) string { return base + "/login?code=" + s.auth.newCode() }

// Close ends the live event streams.
func (s *Server) Close() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// ServeHTTP sets the security headers on every response, bounds the
// request, and refuses a Host that is not this machine (DNS rebinding)
// unless AllowRemote.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if !s.opts.AllowRemote && !loopbackHost(r.Host) {
		http.Error(w, "forbidden: the console answers only to localhost, 127.0.0.1 or [::1]", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, id string, sess *session)

// withSession admits only a request with a live session; others get the
// login page (GET) or 401 (anything else), and nothing else happens.
// Every POST must also carry the session's CSRF token and come from this
// origin.
func (s *Server) withSession(next sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, sess := s.auth.session(r)
		if sess == nil {
			if r.Method == http.MethodGet && r.URL.Path == "/" {
				s.render(w, http.StatusUnauthorized, "login.html", loginView{})
				return
			}
			http.Error(w, "unauthorized: log in with the console's one-time link or its token", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) || !equal(sess.csrf, r.PostFormValue("csrf")) {
				s.opts.Logger.Warn("console: refused a POST without this session's CSRF token or from another origin", "path", r.URL.Path, "remote", r.RemoteAddr)
				http.Error(w, "forbidden: the form is stale or came from another site; reload the console and try again", http.StatusForbidden)
				return
			}
		}
		next(w, r, id, sess)
	}
}

type loginView struct{ Error string }

// loginPage uses a one-time code (?code=), or shows the token form.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	if code == "" {
		s.render(w, http.StatusOK, "login.html", loginView{})
		return
	}
	if !s.auth.useCode(code) {
		s.opts.Logger.Warn("console: refused a login code: unknown, used or expired", "remote", r.RemoteAddr)
		s.render(w, http.StatusUnauthorized, "login.html", loginView{Error: "This login link was already used or has expired. Restart the console for a new one, or log in with the token file."})
		return
	}
	s.login(w, r)
}

// loginToken logs in with the token file's token.
func (s *Server) loginToken(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "forbidden: login from another site", http.StatusForbidden)
		return
	}
	if !s.auth.tokenOK(strings.TrimSpace(r.PostFormValue("token"))) {
		s.opts.Logger.Warn("console: refused a login with a wrong token", "remote", r.RemoteAddr)
		s.render(w, http.StatusUnauthorized, "login.html", loginView{Error: "That is not the token in the console's token file."})
		return
	}
	s.login(w, r)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	id, _ := s.auth.start()
	http.SetCookie(w, sessionCookie(id, int(SessionTTL/time.Second), s.overTLS(r)))
	s.opts.Logger.Info("console: logged in", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// overTLS reports whether the browser reached the console over TLS: its
// own, or, with AllowRemote, the proxy's in front of it
// (X-Forwarded-Proto). On loopback the header is not trusted.
func (s *Server) overTLS(r *http.Request) bool {
	return r.TLS != nil || s.opts.AllowRemote && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, id string, _ *session) {
	s.auth.end(id)
	http.SetCookie(w, sessionCookie("", -1, s.overTLS(r)))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, _ string, sess *session) {
	p, err := s.build(r.Context())
	if err != nil {
		s.opts.Logger.Error("console: reading the ledger", "err", err)
		http.Error(w, "cannot read the ledger: "+x402.Display(err.Error(), 500), http.StatusInternalServerError)
		return
	}
	p.CSRF = sess.csrf
	p.Flash = s.auth.takeFlash(sess)
	s.render(w, http.StatusOK, "console.html", p)
}

// decide approves or denies one approval, like `x402-mcp approve|deny`,
// and goes back to the page with what happened.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, _ string, sess *session) {
	verb := r.PathValue("verb")
	if verb != "approve" && verb != "deny" {
		http.NotFound(w, r)
		return
	}
	id := r.PathValue("id")
	a, err := s.opts.Ledger.Decide(r.Context(), id, verb == "approve")
	var se *ledger.ApprovalStateError
	shown := x402.Display(id, 40)
	var msg string
	switch {
	case errors.Is(err, ledger.ErrApprovalNotFound):
		msg = "No approval " + shown + " in this ledger."
	case errors.As(err, &se):
		msg = fmt.Sprintf("Cannot %s %s: it is already %s; a decision is final.", verb, shown, x402.Display(se.Status, 40))
	case err != nil:
		s.opts.Logger.Error("console: deciding an approval", "id", shown, "err", err)
		msg = "Cannot " + verb + " " + shown + ": " + x402.Display(err.Error(), 300)
	case verb == "approve":
		s.opts.Logger.Info("console: approved", "id", a.ID, "host", a.Host, "amount", a.Amount.String())
		msg = fmt.Sprintf("Approved %s. The agent can now repeat the same call; it pays exactly these terms once, before %s.", a.ID, humantime.Stamp(a.Expires))
	default:
		s.opts.Logger.Info("console: denied", "id", a.ID, "host", a.Host)
		msg = "Denied " + a.ID + ". Nothing was paid; if the agent repeats the call, it is told the payment was denied."
	}
	s.auth.setFlash(sess, msg)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages().ExecuteTemplate(w, name, data); err != nil {
		s.opts.Logger.Error("console: rendering", "page", name, "err", err)
	}
}

// Serve serves the console on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaders,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving the console: %w", err)
	case <-ctx.Done():
	}
	s.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the console: %w", err)
	}
	return nil
}

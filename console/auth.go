package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Lifetimes of the credentials.
const (
	// LoginCodeTTL is how long the printed one-time login link works.
	LoginCodeTTL = 10 * time.Minute
	// SessionTTL is how long a login lasts, however active.
	SessionTTL = 12 * time.Hour
	// maxSessions bounds the server-side session map: logging in again
	// and again cannot grow it without end.
	maxSessions  = 64
	maxTokenFile = 4 << 10
	cookieName   = "x402_console"
)

// secret draws 256 random bits as hex.
func secret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("console: no randomness: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b[:])
}

// equal compares two secrets in constant time, lengths included.
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

type session struct {
	csrf    string
	expires time.Time
	flash   string // one message for the next page, set after a decision
}

// auth holds the login codes and the sessions, in memory only: a restart
// logs everybody out.
type auth struct {
	now   func() time.Time
	token string // from the token file

	mu       sync.Mutex
	codes    map[string]time.Time // one-time login code → expiry
	sessions map[string]*session  // cookie value → session
}

func newAuth(token string, now func() time.Time) *auth {
	return &auth{now: now, token: token, codes: map[string]time.Time{}, sessions: map[string]*session{}}
}

// newCode makes a one-time login code.
func (a *auth) newCode() string {
	c := secret()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.codes[c] = a.now().Add(LoginCodeTTL)
	return c
}

// useCode consumes a login code: true once, while it is unexpired.
func (a *auth) useCode(code string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	var found string
	for c := range a.codes {
		// Every code is compared, so the time taken says nothing about
		// which one matched.
		if equal(c, code) {
			found = c
		}
	}
	if found == "" {
		return false
	}
	exp := a.codes[found]
	delete(a.codes, found)
	return a.now().Before(exp)
}

// tokenOK reports whether s is the token file's token.
func (a *auth) tokenOK(s string) bool { return a.token != "" && equal(a.token, s) }

// start opens a session and returns its cookie value.
func (a *auth) start() (string, *session) {
	id := secret()
	s := &session{csrf: secret(), expires: a.now().Add(SessionTTL)}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for k, v := range a.sessions {
		if !now.Before(v.expires) {
			delete(a.sessions, k)
		}
	}
	if len(a.sessions) >= maxSessions {
		// The oldest goes: a forgotten browser, not the operator at work.
		var oldest string
		for k, v := range a.sessions {
			if oldest == "" || v.expires.Before(a.sessions[oldest].expires) {
				oldest = k
			}
		}
		delete(a.sessions, oldest)
	}
	a.sessions[id] = s
	return id, s
}

// session returns the request's live session, nil without one.
func (a *auth) session(r *http.Request) (string, *session) {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) != 64 {
		return "", nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[c.Value]
	if !ok {
		return "", nil
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, c.Value)
		return "", nil
	}
	return c.Value, s
}

// takeFlash returns and clears a session's message.
func (a *auth) takeFlash(s *session) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

func (a *auth) setFlash(s *session, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s.flash = msg
}

func (a *auth) end(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, id)
}

// sessionCookie is the session's cookie; secure marks it for HTTPS only,
// when the browser reached the console over TLS (a proxy in front).
func sessionCookie(value string, maxAge int, secure bool) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure}
}

// sameOrigin reports whether a state-changing request comes from this
// console's own pages. A browser sends Sec-Fetch-Site with every request,
// and page content cannot forge it: when present it must say
// same-origin. Origin, when present, must name this host — or be "null",
// which is what a browser sends for a form POST from a page whose
// Referrer-Policy is no-referrer (ours), and is accepted only together
// with Sec-Fetch-Site: same-origin. (Scheme is not compared: behind a TLS
// proxy the browser's origin is https while this server sees http.)
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	switch {
	case o == "":
		return true
	case o == "null":
		return site == "same-origin"
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
}

// TokenFile returns the token in path, creating the file (0600, with a new
// random token) when it does not exist. A file that group or others can
// read, or that is not a regular file, is refused: whoever reads the token
// can approve payments.
func TokenFile(path string) (token string, created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		tok := secret()
		_, werr := io.WriteString(f, tok+"\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", false, fmt.Errorf("cannot write console token file %s: %w", path, werr)
		}
		return tok, true, nil
	case !errors.Is(err, fs.ErrExist):
		return "", false, fmt.Errorf("cannot create console token file %s: %w\n\thint: give another place with --token-file", path, err)
	}
	f, err = os.Open(path)
	if err != nil {
		return "", false, fmt.Errorf("cannot open console token file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", false, fmt.Errorf("cannot stat console token file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return "", false, fmt.Errorf("console token file %s is not a regular file\n\thint: remove it; the console creates a new one", path)
	}
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return "", false, fmt.Errorf("console token file %s is accessible by group or others (mode %04o)\n\thint: run chmod 600 %s, or remove it and restart the console for a new token", path, perm, path)
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", false, fmt.Errorf("cannot read console token file %s: %w", path, err)
	}
	tok := string(bytes.TrimSpace(buf))
	if len(buf) > maxTokenFile || len(tok) < 32 || strings.ContainsFunc(tok, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return "", false, fmt.Errorf("console token file %s does not hold a token (32 to %d printable ASCII characters)\n\thint: remove it; the console creates a new one", path, maxTokenFile)
	}
	return tok, false, nil
}

// Package pgtest gives tests a real PostgreSQL server: a throwaway cluster
// in a temporary directory, listening on 127.0.0.1 only, with password
// authentication, run by an unprivileged user.
//
// Two ways in:
//
//   - Database(t) makes a fresh, empty database on the shared server named
//     by X402_MCP_TEST_PG (`go run ./scripts/pgcluster start DIR` starts
//     one and prints the variables to export; .ci/run does so). Without
//     it the test skips with a message saying how to run it, or fails
//     under CI=true: a skipped check is no check.
//   - Start(t) starts a private cluster that the test may stop and start
//     again (the fleet's "database down" tests). It needs initdb and
//     pg_ctl (Debian's postgresql package); same skip rule.
//
// The password is in a pgpass file (chmod 600), never in a URL: the URLs
// name it with the passfile parameter, as libpq and pgx read it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the shared server's maintenance database: a URL without a
// password, whose passfile parameter names the pgpass file.
const EnvURL = "X402_MCP_TEST_PG"

// User is the role the clusters create and the tests connect as.
const User = "x402"

// unprivileged is who runs the server when the tests run as root (initdb
// and postgres refuse root).
const unprivileged = "nobody"

// Required reports whether PostgreSQL tests must run rather than skip.
func Required() bool { return os.Getenv("CI") == "true" }

func skip(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("PostgreSQL is required under CI=true: %s", why)
	}
	t.Skipf("PostgreSQL test skipped: %s", why)
}

// Database returns the URL of a new, empty database on the shared server,
// dropped when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		skip(t, EnvURL+" is not set; start a server with `eval \"$(go run ./scripts/pgcluster start /tmp/x402pg)\"` and run the tests again")
	}
	u, err := CreateDatabase(context.Background(), base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v", base, err)
	}
	t.Cleanup(func() { _ = DropDatabase(context.Background(), base, u) })
	return u
}

// CreateDatabase makes a database with a random name on the server of the
// maintenance URL base, and returns its URL.
func CreateDatabase(ctx context.Context, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "x402_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return withDatabase(base, name)
}

// DropDatabase drops the database of u (made by CreateDatabase),
// disconnecting whoever is still in it.
func DropDatabase(ctx context.Context, base, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(pu.Path, "/")
	if !strings.HasPrefix(name, "x402_test_") {
		return fmt.Errorf("pgtest: refusing to drop %q", name)
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}

func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// A Cluster is a PostgreSQL server in a directory of its own.
type Cluster struct {
	Dir      string // data directory's parent: data/, log, pgpass
	Port     int
	PassFile string
	owner    *user.User // who runs the server; nil: the current user
}

// URL is the URL of database db on the cluster, password by passfile.
func (c *Cluster) URL(db string) string {
	q := url.Values{"sslmode": {"disable"}, "passfile": {c.PassFile}}
	return (&url.URL{Scheme: "postgres", User: url.User(User), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// Tools reports why a private cluster cannot be started here, or "".
func Tools() string {
	for _, tool := range []string{"initdb", "pg_ctl"} {
		if _, err := lookTool(tool); err != nil {
			return tool + " not found (install Debian's postgresql package)"
		}
	}
	return ""
}

// lookTool finds a PostgreSQL program on PATH or in Debian's versioned
// directory, which is not on PATH.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found", name)
}

// Start starts a private cluster for the test and stops it when the test
// ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if why := Tools(); why != "" {
		skip(t, why)
	}
	c, err := StartCluster()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { c.Remove() })
	return c
}

// StartCluster makes a new cluster in a new temporary directory and starts
// it. Remove stops it and deletes the directory.
func StartCluster() (*Cluster, error) {
	// Not t.TempDir: its parents are private to the test's user, and the
	// server may run as another one.
	dir, err := os.MkdirTemp("", "x402pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, PassFile: filepath.Join(dir, "pgpass")}
	ok := false
	defer func() {
		if !ok {
			c.Remove()
		}
	}()
	if os.Geteuid() == 0 {
		if c.owner, err = user.Lookup(unprivileged); err != nil {
			return nil, fmt.Errorf("running as root, and no user %q to run PostgreSQL: %w", unprivileged, err)
		}
	}
	var pw [18]byte
	rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := c.chown(dir, pwfile); err != nil {
		return nil, err
	}
	initdb, err := lookTool("initdb")
	if err != nil {
		return nil, err
	}
	if out, err := c.run(initdb, "-D", filepath.Join(dir, "data"), "-U", User, "--pwfile", pwfile,
		"--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)
	if c.Port, err = freePort(); err != nil {
		return nil, err
	}
	// The pgpass file is read by the client, which runs as the current
	// user: it stays ours.
	line := fmt.Sprintf("127.0.0.1:%d:*:%s:%s\n", c.Port, User, password)
	if err := os.WriteFile(c.PassFile, []byte(line), 0o600); err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Start starts the cluster's server (again) on its port and waits until it
// accepts connections.
func (c *Cluster) Start() error {
	pgctl, err := lookTool("pg_ctl")
	if err != nil {
		return err
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c max_connections=300", c.Port, c.Dir)
	if out, err := c.run(pgctl, "-D", filepath.Join(c.Dir, "data"), "-l", filepath.Join(c.Dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server at once, as a crash or an outage would look to
// its clients (mode immediate).
func (c *Cluster) Stop() error {
	pgctl, err := lookTool("pg_ctl")
	if err != nil {
		return err
	}
	if out, err := c.run(pgctl, "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Remove stops the server if it runs and deletes the cluster's directory.
func (c *Cluster) Remove() {
	if _, err := os.Stat(filepath.Join(c.Dir, "data", "postmaster.pid")); err == nil {
		_ = c.Stop()
	}
	os.RemoveAll(c.Dir)
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if c.owner != nil {
		cmd = exec.Command("runuser", append([]string{"-u", c.owner.Username, "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

func (c *Cluster) chown(paths ...string) error {
	if c.owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Wait waits until the cluster accepts connections to db, or ctx ends.
func (c *Cluster) Wait(ctx context.Context) error {
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Existing returns the cluster StartCluster made in dir, to stop or
// remove it from another process.
func Existing(dir string) (*Cluster, error) {
	c := &Cluster{Dir: dir, PassFile: filepath.Join(dir, "pgpass")}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		return nil, fmt.Errorf("%s holds no cluster: %w", dir, err)
	}
	if os.Geteuid() == 0 {
		var err error
		if c.owner, err = user.Lookup(unprivileged); err != nil {
			return nil, err
		}
	}
	return c, nil
}

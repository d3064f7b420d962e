package config

import (
	"net/url"
	"strings"
)

// IsDatabaseURL reports whether a ledger location names a PostgreSQL
// database (postgres:// or postgresql://) rather than a SQLite file.
func IsDatabaseURL(s string) bool {
	lower := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// passwordHint says where a PostgreSQL password belongs.
const passwordHint = "put the password in ~/.pgpass (chmod 600), or in the file PGPASSFILE names, or in PGPASSWORD; never in the configuration, where the agent's tools and logs could read it"

// checkDatabaseURL checks a PostgreSQL ledger URL. It is repeated in no
// error: it could hold a password.
func checkDatabaseURL(s string) (msg, hint string) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "the PostgreSQL URL does not parse (value not shown)", "write postgres://USER@HOST:PORT/DATABASE, with options such as ?sslmode=verify-full"
	}
	if _, ok := u.User.Password(); ok {
		return "the PostgreSQL URL holds a password (value not shown)", passwordHint
	}
	for k := range u.Query() {
		if strings.EqualFold(k, "password") {
			return "the PostgreSQL URL holds a password parameter (value not shown)", passwordHint
		}
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return "the PostgreSQL URL names no host", "write postgres://USER@HOST:PORT/DATABASE"
	}
	if strings.Trim(u.Path, "/") == "" {
		return "the PostgreSQL URL names no database", "write postgres://USER@HOST:PORT/DATABASE"
	}
	return "", ""
}

// ledgerLocation is the ledger a file's `ledger` key names: a PostgreSQL
// URL as written, or a path resolved against the file's directory.
func ledgerLocation(dir, v string) (string, string, string) {
	if IsDatabaseURL(v) {
		if msg, hint := checkDatabaseURL(v); msg != "" {
			return "", msg, hint
		}
		return strings.TrimSpace(v), "", ""
	}
	return resolve(dir, v), "", ""
}

func envLedger(v string) (string, error) {
	if IsDatabaseURL(v) {
		if msg, hint := checkDatabaseURL(v); msg != "" {
			return "", &Error{Var: EnvLedger, Msg: msg, Hint: hint}
		}
		return strings.TrimSpace(v), nil
	}
	return envPath(EnvLedger, v)
}

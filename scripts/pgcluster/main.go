// Command pgcluster starts and stops the throwaway PostgreSQL cluster the
// tests use (see internal/pgtest): in a new temporary directory, listening
// on 127.0.0.1 only, with password authentication, run by an unprivileged
// user when started as root.
//
//	eval "$(go run ./scripts/pgcluster start)"   # exports X402_MCP_TEST_PG and X402_MCP_TEST_PG_DIR
//	go test ./...
//	go run ./scripts/pgcluster stop "$X402_MCP_TEST_PG_DIR"
package main

import (
	"fmt"
	"os"

	"github.com/x402-mcp/x402-mcp/internal/pgtest"
	"github.com/x402-mcp/x402-mcp/internal/shellquote"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pgcluster:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 1 && args[0] == "start":
		if why := pgtest.Tools(); why != "" {
			return fmt.Errorf("%s", why)
		}
		c, err := pgtest.StartCluster()
		if err != nil {
			return err
		}
		fmt.Printf("export %s=%s\n", pgtest.EnvURL, shellquote.Quote(c.URL("postgres")))
		fmt.Printf("export %s_DIR=%s\n", pgtest.EnvURL, shellquote.Quote(c.Dir))
		return nil
	case len(args) == 2 && args[0] == "stop":
		c, err := pgtest.Existing(args[1])
		if err != nil {
			return err
		}
		c.Remove()
		return nil
	default:
		return fmt.Errorf("usage: pgcluster start | pgcluster stop DIR")
	}
}

// Package console is the operator console: a small web server, for the
// operator's browser, that shows what agents spend from the same ledger
// every x402-mcp process uses, and lets the operator approve or deny the
// payments waiting for a human.
//
// # Invariants
//
//   - The console never signs and never holds the wallet key. The only
//     write it makes is ledger.Decide, the same single-use, term-bound
//     decision as `x402-mcp approve` and `x402-mcp deny`.
//   - Nothing is shown or changed without a session. A session starts
//     only from a credential that never passes through the agent: the
//     one-time login code printed on the operator's terminal (256 random
//     bits, single use, short expiry) or the token in a chmod-600 token
//     file. Sessions live in this process's memory, behind a random
//     HttpOnly, SameSite=Strict cookie, and expire.
//   - Every POST but the login itself carries the session's CSRF token
//     (compared in constant time) and comes from this origin (Origin and
//     Sec-Fetch-Site). A refused request changes nothing.
//   - Every response carries a strict Content-Security-Policy: the page
//     runs no inline script or style and loads nothing from elsewhere;
//     its one script and stylesheet are embedded in the binary. Pages are
//     rendered on the server with html/template (charts are SVG), so they
//     read without JavaScript; the script only refreshes them live.
//   - Every piece of text another party wrote (hosts, URLs, payees, token
//     names, notes, requesters, transaction hashes) passes the one display
//     cleaner, x402.Display, directly or through pay's display helpers,
//     before html/template escapes it.
//   - Money stays integer (atomic units, nano-USD) until it is formatted.
//   - It listens on loopback unless told --allow-remote, and then only
//     behind TLS terminated in front of it.
package console

//go:build !unix

package ledger

// checkAccess does nothing here: Windows has no group/other mode bits (Go
// reports 0666 or 0444), so a mode check would refuse every file; access
// there is a matter of ACLs, and the default location (%LocalAppData%) is
// private to the user.
func checkAccess(path, what string, dir bool) error { return nil }

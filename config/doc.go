// Package config reads the operator's x402-mcp configuration file (TOML).
//
// Reading is strict: unknown keys, duplicate keys and wrong types are
// errors that name the file, the line and the key, so a typo never silently
// drops a limit. Paths in the file are relative to the file's directory.
// Amounts are decimal strings; nothing here is a float.
//
// LoadWithEnv applies environment overrides (X402_MCP_*) after the file;
// an error in one names the variable, and Config.CheckEnvNames refuses a
// variable that was set but not used, for the same reason an unknown key
// is refused.
//
// An RPC URL may carry a provider's API key in its user info, path or
// query. No error of this package and no rendering of a Network (fmt,
// slog, JSON) shows more of it than scheme and host; only the RPCURL field
// itself holds it, for dialling.
package config

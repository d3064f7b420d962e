// Package config reads the operator's x402-mcp configuration file (TOML).
//
// Reading is strict: unknown keys, duplicate keys and wrong types are
// errors that name the file, the line and the key, so a typo never silently
// drops a limit. Paths in the file are relative to the file's directory.
// Amounts are decimal strings; nothing here is a float.
package config

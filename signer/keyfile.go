package signer

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/x402-mcp/x402-mcp/internal/redact"
	"github.com/x402-mcp/x402-mcp/internal/shellquote"
)

// EnvPrivateKey is the environment variable FromEnv reads.
const EnvPrivateKey = "X402_PRIVATE_KEY"

// EnvWarning is what the caller should print (to stderr, once) when the key
// came from EnvPrivateKey. It has no program prefix so the caller can add
// its own.
const EnvWarning = "warning: the private key was read from the " + EnvPrivateKey +
	" environment variable, which other processes of this user, child processes and crash reports can see; " +
	"prefer a key file (chmod 600) or an encrypted keystore with a passphrase file"

// Size bounds for files read here. A hex key is 66 characters; a
// go-ethereum keystore is about 500 bytes. The bounds are generous for
// whitespace and comments of the format, and small enough that pointing a
// flag at the wrong file (a log, a device) fails at once instead of reading
// it all into memory.
const (
	maxHexKeyFile     = 1 << 10
	maxPassphraseFile = 4 << 10
	maxKeystoreFile   = 64 << 10
)

// LoadKeystore decrypts a go-ethereum encrypted JSON keystore (the format
// of geth account new, clef and cast wallet). The passphrase is read from
// passphraseFile, so it never travels on argv; trailing CR/LF are trimmed
// (editors and echo add them), other whitespace is part of the passphrase.
//
// The passphrase file is held to the same rule as a hex key file: it must
// not be accessible by group or others, because next to its keystore it is
// as good as the key.
func LoadKeystore(path, passphraseFile string) (*Key, error) {
	blob, err := readBounded(path, "keystore file", maxKeystoreFile, false)
	if err != nil {
		return nil, err
	}
	// An encrypted keystore is not secret on its own, but check the shape
	// ourselves so that go-ethereum's JSON errors (which quote the input)
	// never need to be shown.
	if !json.Valid(blob) {
		return nil, newError(fmt.Sprintf("signer: keystore file %s is not JSON; expected a go-ethereum encrypted key file (UTC--…)", redact.Path(path)), ErrBadKey)
	}
	pass, err := readBounded(passphraseFile, passphraseWhat, maxPassphraseFile, true)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	n := len(pass)
	for n > 0 && (pass[n-1] == '\n' || pass[n-1] == '\r') {
		n--
	}
	// DecryptKey takes a string, which cannot be zeroed afterwards; that
	// copy lives until the garbage collector reuses it. Nothing better is
	// possible without reimplementing the keystore format.
	gk, err := keystore.DecryptKey(blob, string(pass[:n]))
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, newError(fmt.Sprintf("signer: cannot decrypt keystore %s with the passphrase in %s; check that the passphrase file belongs to this keystore", redact.Path(path), redact.Path(passphraseFile)), ErrWrongPassphrase)
		}
		// Unsupported version, cipher or KDF, or a damaged file. The
		// go-ethereum text is dropped: some of it echoes file content.
		return nil, newError(fmt.Sprintf("signer: keystore file %s is not one go-ethereum can decrypt (unsupported version, cipher or KDF, or a damaged file)", redact.Path(path)), ErrBadKey)
	}
	raw := gk.PrivateKey.D.FillBytes(make([]byte, 32))
	defer clear(raw)
	// Wipe go-ethereum's copy of the scalar as far as we can reach it (the
	// decrypted plaintext inside DecryptKey is out of reach).
	clear(gk.PrivateKey.D.Bits())
	gk.PrivateKey.D.SetInt64(0)
	k, err := keyFromBytes(raw)
	if err != nil {
		return nil, newError(fmt.Sprintf("signer: keystore file %s holds an invalid secp256k1 private key", redact.Path(path)), ErrBadKey)
	}
	return k, nil
}

// LoadHexFile reads a file holding one 32-byte private key in hex, with or
// without a 0x prefix, surrounded by optional whitespace. The file must not
// be accessible by group or others (like ssh private keys): a key anyone on
// the machine can read is a key anyone on the machine can spend with.
func LoadHexFile(path string) (*Key, error) {
	b, err := readBounded(path, "key file", maxHexKeyFile, true)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	k, err := parseHexKey(b)
	if err != nil {
		return nil, newError(fmt.Sprintf("signer: key file %s does not hold a private key: %v", redact.Path(path), err), ErrBadKey)
	}
	return k, nil
}

// FromEnv reads a hex private key from EnvPrivateKey through getenv
// (os.Getenv when nil). ok is false when the variable is unset or empty.
// The caller should print EnvWarning when ok is true.
func FromEnv(getenv func(string) string) (k *Key, ok bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	v := getenv(EnvPrivateKey)
	if v == "" {
		return nil, false, nil
	}
	// The string itself cannot be zeroed; the byte copy can.
	b := []byte(v)
	defer clear(b)
	k, err = parseHexKey(b)
	if err != nil {
		return nil, true, newError(fmt.Sprintf("signer: %s does not hold a private key: %v", EnvPrivateKey, err), ErrBadKey)
	}
	return k, true, nil
}

// WriteHexFile writes the key as 0x-hex to a new file with mode 0600. It
// refuses to replace an existing file, so it can never overwrite another
// key (or anything else) by mistake.
func (k *Key) WriteHexFile(path string) (err error) {
	if !k.valid() {
		return ErrNoKey
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return newError(fmt.Sprintf("signer: %s already exists; refusing to overwrite it with a key", path), fs.ErrExist)
		}
		return newError(fmt.Sprintf("signer: cannot create key file %s", trimOp(err)), err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = newError(fmt.Sprintf("signer: cannot write key file %s", trimOp(cerr)), cerr)
		}
		if err != nil {
			// Do not leave a half-written key file behind.
			_ = os.Remove(path)
		}
	}()

	raw := k.s.priv.D.FillBytes(make([]byte, 32))
	defer clear(raw)
	out := make([]byte, 2+hex.EncodedLen(len(raw))+1)
	defer clear(out)
	out[0], out[1] = '0', 'x'
	hex.Encode(out[2:], raw)
	out[len(out)-1] = '\n'
	if _, err := f.Write(out); err != nil {
		return newError(fmt.Sprintf("signer: cannot write key file %s", trimOp(err)), err)
	}
	// The subprocess that reads the file may start right away; make sure
	// it sees the whole key even after a crash of this process.
	if err := f.Sync(); err != nil {
		return newError(fmt.Sprintf("signer: cannot write key file %s", trimOp(err)), err)
	}
	return nil
}

// keyParseError says what is wrong with key text without quoting it; it is
// the only error parseHexKey returns, so callers may print it.
type keyParseError string

func (e keyParseError) Error() string { return string(e) }

const (
	errKeyLength = keyParseError("expected 64 hex digits (32 bytes), optionally prefixed by 0x")
	errKeyDigits = keyParseError("it contains a character that is not a hex digit")
	errKeyRange  = keyParseError("the value is zero or not below the secp256k1 group order")
)

// parseHexKey decodes "[ws][0x]<64 hex>[ws]". It never returns an error
// that contains any byte of the input.
func parseHexKey(b []byte) (*Key, error) {
	b = trimSpace(b)
	if len(b) >= 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') {
		b = b[2:]
	}
	if len(b) != 64 {
		return nil, errKeyLength
	}
	var raw [32]byte
	defer clear(raw[:])
	// hex.Decode's error names the offending character; ours does not.
	if _, err := hex.Decode(raw[:], b); err != nil {
		return nil, errKeyDigits
	}
	k, err := keyFromBytes(raw[:])
	if err != nil {
		return nil, errKeyRange
	}
	return k, nil
}

// trimSpace trims ASCII whitespace without allocating (bytes.TrimSpace
// does not allocate either, but keeping it local makes it obvious that no
// copy of the key text is made).
func trimSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// passphraseWhat names a passphrase file in readBounded's messages.
const passphraseWhat = "passphrase file"

// readBounded reads at most limit bytes of path; what names the file in
// messages ("key file"). With private set, it refuses a file whose mode
// grants anything to group or others. The mode is taken from the open
// descriptor, so the file checked is the file read.
//
// The buffer is allocated once at its final size: io.ReadAll would grow it
// by copying and leave unzeroed copies of the secret in the old buffers.
func readBounded(path, what string, limit int, private bool) ([]byte, error) {
	if path == "" {
		// os.Open("") fails with a message that names no file at all.
		return nil, newError(fmt.Sprintf("signer: no %s path given; set the path of the %s", what, what), fs.ErrInvalid)
	}
	if redact.LooksSecret(path) {
		// A key (or recovery phrase) pasted where its file's path belongs:
		// no file of that name is wanted, and the text must not be shown.
		return nil, newError(fmt.Sprintf("signer: %s: %s\n\thint: put the key in a file only you can read (chmod 600) and give that file's path", what, redact.LooksLikeKey), fs.ErrInvalid)
	}
	f, err := os.Open(path)
	if err != nil {
		if what == passphraseWhat && errors.Is(err, fs.ErrNotExist) {
			// What stands in place of a missing passphrase file's path may
			// be the passphrase itself, pasted into passphrase_file, and a
			// passphrase has no shape to recognise (a key has: LooksSecret
			// above): say where it is configured instead of what it is.
			return nil, newError(fmt.Sprintf("signer: cannot open %s: no such file (the configured path is not shown, in case it is the secret itself)\n\thint: check the %s's path in the configuration or the environment variable that names it", what, what), err)
		}
		return nil, newError(fmt.Sprintf("signer: cannot open %s %s", what, trimOp(err)), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, newError(fmt.Sprintf("signer: cannot stat %s %s", what, trimOp(err)), err)
	}
	if st.IsDir() {
		return nil, newError(fmt.Sprintf("signer: %s %s is a directory; give the path of the file itself", what, path), ErrBadKey)
	}
	// Windows has no group/other mode bits (Go reports 0666 or 0444), so
	// the check would refuse every file there; it relies on ACLs instead.
	if private && runtime.GOOS != "windows" {
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			return nil, newError(fmt.Sprintf("signer: %s %s is accessible by group or others (mode %04o); run chmod 600 %s", what, path, perm, shellquote.Quote(path)), ErrInsecureKeyFile)
		}
	}
	buf := make([]byte, limit+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		clear(buf)
		return nil, newError(fmt.Sprintf("signer: cannot read %s %s", what, trimOp(err)), err)
	}
	if n > limit {
		clear(buf)
		return nil, newError(fmt.Sprintf("signer: %s %s is larger than %d bytes; check that the path names the right file", what, path, limit), ErrFileTooLarge)
	}
	return buf[:n], nil
}

// trimOp turns "open /x: no such file or directory" into "/x: no such file
// or directory", so messages read "signer: cannot open key file /x: no such
// file or directory" without repeating the operation.
func trimOp(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

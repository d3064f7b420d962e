package signer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
)

// The public hardhat/anvil test key #1 from the vectors. It never holds
// real funds, which is why it may appear in a test.
const (
	testKeyHex  = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
	testAddress = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
)

// leaksKey reports whether s contains the test key in hex (any case, any
// 10-digit run of it, enough to catch a partial echo) or in decimal, as %d
// or big.Int.String would print the scalar.
func leaksKey(s string) bool {
	low := strings.ToLower(s)
	for i := 0; i+10 <= len(testKeyHex); i++ {
		if strings.Contains(low, testKeyHex[i:i+10]) {
			return true
		}
	}
	raw, _ := hex.DecodeString(testKeyHex)
	dec := new(big.Int).SetBytes(raw).String()
	return strings.Contains(s, dec[:20])
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	if leaksKey(s) {
		t.Fatalf("%s leaks key material: %q", what, s)
	}
}

// The detector itself must see the leaks it is meant to catch, or every
// redaction test above passes vacuously.
func TestLeakDetector(t *testing.T) {
	k := vectorKey(t, mustHex(t, testKeyHex))
	for _, leak := range []string{
		fmt.Sprintf("%x", k.s.priv.D),
		fmt.Sprintf("%X", k.s.priv.D),
		fmt.Sprintf("%d", k.s.priv.D),
		fmt.Sprintf("%v", k.s.priv),
		"invalid byte in " + testKeyHex[20:34],
	} {
		if !leaksKey(leak) {
			t.Errorf("detector missed %q", leak)
		}
	}
	if leaksKey(testAddress) {
		t.Error("detector flags the address")
	}
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func skipOnWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not enforced on Windows")
	}
}

func TestLoadHexFile(t *testing.T) {
	for name, content := range map[string]string{
		"0x prefix":       "0x" + testKeyHex,
		"0X prefix":       "0X" + testKeyHex,
		"bare":            testKeyHex,
		"trailing LF":     "0x" + testKeyHex + "\n",
		"CRLF and spaces": "  \t0x" + testKeyHex + " \r\n",
		"upper case":      "0x" + strings.ToUpper(testKeyHex),
	} {
		t.Run(name, func(t *testing.T) {
			k, err := LoadHexFile(writeFile(t, "key", content, 0o600))
			if err != nil {
				t.Fatal(err)
			}
			if got := k.Address().Hex(); got != testAddress {
				t.Fatalf("address %s, want %s", got, testAddress)
			}
		})
	}
	t.Run("0400 accepted", func(t *testing.T) {
		skipOnWindows(t)
		if _, err := LoadHexFile(writeFile(t, "key", testKeyHex, 0o400)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoadHexFileRefusesOpenModes(t *testing.T) {
	skipOnWindows(t)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o601, 0o610, 0o700 | 0o004} {
		t.Run(mode.String(), func(t *testing.T) {
			p := writeFile(t, "key", "0x"+testKeyHex+"\n", mode)
			k, err := LoadHexFile(p)
			if !errors.Is(err, ErrInsecureKeyFile) {
				t.Fatalf("err = %v, want ErrInsecureKeyFile", err)
			}
			if k != nil {
				t.Fatal("returned a key")
			}
			if !strings.Contains(err.Error(), "chmod 600 "+p) {
				t.Fatalf("message lacks the chmod hint: %q", err)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
}

func TestLoadHexFileRefusesBadContent(t *testing.T) {
	// secp256k1 group order n: not a valid key, nor is anything above it.
	const order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
	cases := map[string]string{
		"non-hex digit": "0x" + testKeyHex[:40] + "zz" + testKeyHex[42:],
		"short":         "0x" + testKeyHex[:62],
		"long":          "0x" + testKeyHex + "00",
		"two keys":      testKeyHex + "\n" + testKeyHex,
		"empty":         "",
		"zero":          "0x" + strings.Repeat("0", 64),
		"group order":   "0x" + order,
		"0x only":       "0x",
		"inner space":   "0x" + testKeyHex[:32] + " " + testKeyHex[32:],
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, "key", content, 0o600)
			_, err := LoadHexFile(p)
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("err = %v, want ErrBadKey", err)
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("message does not name the file: %q", err)
			}
			assertNoSecret(t, "error", err.Error())
			// Nothing from the file may be quoted, not even the bad bytes.
			if strings.Contains(err.Error(), "zz") || strings.Contains(err.Error(), "'z'") {
				t.Fatalf("message quotes the file content: %q", err)
			}
		})
	}
}

func TestLoadHexFileBounds(t *testing.T) {
	oversized := writeFile(t, "key", "0x"+testKeyHex+strings.Repeat(" ", maxHexKeyFile), 0o600)
	if _, err := LoadHexFile(oversized); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("oversized file: err = %v, want ErrFileTooLarge", err)
	}
	if _, err := LoadHexFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := LoadHexFile(t.TempDir()); err == nil {
		t.Fatal("directory accepted")
	}
}

func TestFromEnv(t *testing.T) {
	env := func(v string) func(string) string {
		return func(name string) string {
			if name == EnvPrivateKey {
				return v
			}
			return ""
		}
	}
	k, ok, err := FromEnv(env(""))
	if k != nil || ok || err != nil {
		t.Fatalf("unset: %v %v %v", k, ok, err)
	}
	k, ok, err = FromEnv(env(" 0x" + testKeyHex + "\n"))
	if err != nil || !ok || k.Address().Hex() != testAddress {
		t.Fatalf("set: %v %v %v", k, ok, err)
	}
	k, ok, err = FromEnv(env(testKeyHex[:63] + "g"))
	if !errors.Is(err, ErrBadKey) || !ok || k != nil {
		t.Fatalf("bad: %v %v %v", k, ok, err)
	}
	if !strings.Contains(err.Error(), EnvPrivateKey) {
		t.Fatalf("message does not name the variable: %q", err)
	}
	assertNoSecret(t, "error", err.Error())

	// nil getenv reads the real environment.
	t.Setenv(EnvPrivateKey, testKeyHex)
	k, ok, err = FromEnv(nil)
	if err != nil || !ok || k.Address().Hex() != testAddress {
		t.Fatalf("os env: %v %v %v", k, ok, err)
	}
	if !strings.Contains(EnvWarning, EnvPrivateKey) {
		t.Fatal("EnvWarning should name the variable")
	}
}

// testKeystore writes an encrypted keystore for the test key. The scrypt
// cost is far below even keystore.LightScryptN: the file format and the
// decryption path are the same, and each decryption under -race would
// otherwise take seconds.
func testKeystore(t *testing.T, passphrase string) string {
	t.Helper()
	priv, err := crypto.HexToECDSA(testKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := keystore.EncryptKey(&keystore.Key{Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv}, passphrase, 1<<4, 1)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "UTC--keystore.json", string(blob), 0o600)
}

func TestLoadKeystore(t *testing.T) {
	const pass = "correct horse battery staple "
	ks := testKeystore(t, pass)
	for name, content := range map[string]string{
		"no newline": pass,
		"LF":         pass + "\n",
		"CRLF":       pass + "\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			k, err := LoadKeystore(ks, writeFile(t, "pass", content, 0o600))
			if err != nil {
				t.Fatal(err)
			}
			if got := k.Address().Hex(); got != testAddress {
				t.Fatalf("address %s, want %s", got, testAddress)
			}
		})
	}

	t.Run("wrong passphrase", func(t *testing.T) {
		const wrong = "hunter2-wrong-passphrase"
		pf := writeFile(t, "pass", wrong+"\n", 0o600)
		k, err := LoadKeystore(ks, pf)
		if !errors.Is(err, ErrWrongPassphrase) || k != nil {
			t.Fatalf("err = %v, want ErrWrongPassphrase", err)
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("message echoes the passphrase: %q", err)
		}
		if !strings.Contains(err.Error(), ks) || !strings.Contains(err.Error(), pf) {
			t.Fatalf("message should name both files: %q", err)
		}
	})

	t.Run("passphrase file readable by others", func(t *testing.T) {
		skipOnWindows(t)
		pf := writeFile(t, "pass", pass, 0o644)
		_, err := LoadKeystore(ks, pf)
		if !errors.Is(err, ErrInsecureKeyFile) || !strings.Contains(err.Error(), "chmod 600 "+pf) {
			t.Fatalf("err = %v, want ErrInsecureKeyFile with a chmod hint", err)
		}
		if strings.Contains(err.Error(), pass) {
			t.Fatalf("message echoes the passphrase: %q", err)
		}
	})

	t.Run("not a keystore", func(t *testing.T) {
		pf := writeFile(t, "pass", pass, 0o600)
		for name, content := range map[string]string{
			"hex key":     "0x" + testKeyHex,
			"empty JSON":  "{}",
			"wrong types": `{"version": 3, "crypto": "0x` + testKeyHex + `"}`,
			"bad cipher":  `{"version": 3, "id": "00000000-0000-0000-0000-000000000000", "crypto": {"cipher": "` + testKeyHex + `"}}`,
		} {
			_, err := LoadKeystore(writeFile(t, "ks", content, 0o600), pf)
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("%s: err = %v, want ErrBadKey", name, err)
			}
			assertNoSecret(t, name, err.Error())
		}
	})

	t.Run("oversized keystore", func(t *testing.T) {
		pf := writeFile(t, "pass", pass, 0o600)
		_, err := LoadKeystore(writeFile(t, "ks", strings.Repeat(" ", maxKeystoreFile+1), 0o600), pf)
		if !errors.Is(err, ErrFileTooLarge) {
			t.Fatalf("err = %v, want ErrFileTooLarge", err)
		}
	})
}

func TestWriteHexFile(t *testing.T) {
	k := vectorKey(t, mustHex(t, testKeyHex))
	p := filepath.Join(t.TempDir(), "funded.key")
	if err := k.WriteHexFile(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", st.Mode().Perm())
	}
	back, err := LoadHexFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if back.Address() != k.Address() {
		t.Fatal("round trip changed the key")
	}

	before, _ := os.ReadFile(p)
	other, _ := GenerateKey()
	err = other.WriteHexFile(p)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: err = %v, want fs.ErrExist", err)
	}
	assertNoSecret(t, "error", err.Error())
	after, _ := os.ReadFile(p)
	if string(before) != string(after) {
		t.Fatal("existing key file was modified")
	}

	if err := new(Key).WriteHexFile(filepath.Join(t.TempDir(), "k")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("zero Key: err = %v, want ErrNoKey", err)
	}
}

func TestNewKeyCopies(t *testing.T) {
	priv, _ := crypto.HexToECDSA(testKeyHex)
	k := NewKey(priv)
	priv.D.SetInt64(1) // the caller scribbles on its key
	if k.Address().Hex() != testAddress {
		t.Fatal("NewKey shares the caller's scalar")
	}
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("NewKey(nil) did not panic")
		}
		if s, _ := r.(string); !strings.HasPrefix(s, "signer: ") {
			t.Fatalf("panic value %v", r)
		}
	}()
	NewKey(nil)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEmptyPaths(t *testing.T) {
	if _, err := LoadHexFile(""); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "key file") {
		t.Fatalf("LoadHexFile(\"\"): %v", err)
	}
	ks := testKeystore(t, "pw")
	if _, err := LoadKeystore(ks, ""); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "passphrase file") {
		t.Fatalf("LoadKeystore without passphrase file: %v", err)
	}
	if _, err := LoadKeystore("", ks); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "keystore file") {
		t.Fatalf("LoadKeystore without keystore: %v", err)
	}
}

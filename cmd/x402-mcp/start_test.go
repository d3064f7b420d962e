package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// TestWrongPassphraseRefusesToPay: the keystore is unlocked while the
// server already answers; with the wrong passphrase, the paid call answers
// with the reason (and stderr says it at once), nothing is signed, and the
// server exits with status 1 when the session ends.
func TestWrongPassphraseRefusesToPay(t *testing.T) {
	tsClientDir(t)
	n, cfg, payer := tsDevnet(t, "max_per_payment = \"0.10\"\n")
	dir := filepath.Dir(cfg)
	hexKey, err := os.ReadFile(filepath.Join(dir, "payer.key"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(string(hexKey)), "0x"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: payer, PrivateKey: priv}, "correct horse", 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"key.json": string(ks), "pass": "zebra-42-wrong\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "payer.key")); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	config := strings.Replace(string(text), `key_file = "payer.key"`, "keystore = \"key.json\"\npassphrase_file = \"pass\"", 1)
	if config == string(text) {
		t.Fatal("the devnet config names no key file")
	}
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := refusesToPay(t, n, cfg, payer, "cannot decrypt keystore", "check that the passphrase file belongs to this keystore")
	if strings.Contains(msg, "zebra-42") {
		t.Errorf("the passphrase is shown: %s", msg)
	}
	r := runBin(t, nil, "serve", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "cannot decrypt keystore") || strings.Contains(r.stderr, "zebra-42") {
		t.Errorf("serve with the wrong passphrase, stdin closed: %+v", r)
	}
}

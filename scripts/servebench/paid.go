package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// paid runs n paid fetches with callers concurrent callers against a local
// network, then reads the server's memory.
func (b *bench) paid(n, callers int, useKeystore bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Authorizations valid for a day, and a chain allowed to run hours
	// ahead of the clock: mining a block per payment moves chain time
	// faster than the wall clock.
	routes := localnet.DefaultRoutes()
	for i := range routes {
		routes[i].MaxTimeoutSeconds = 86400
	}
	net, err := localnet.Start(ctx, localnet.NetworkConfig{RPC: true, Routes: routes, MaxClockDrift: 12 * time.Hour})
	if err != nil {
		return err
	}
	defer net.Close()
	key, payer, err := net.NewPayer(ctx, big.NewInt(int64(n+100)*100_000))
	if err != nil {
		return err
	}
	name := "key file"
	if useKeystore {
		name = "encrypted keystore"
	}
	s, err := b.networkSetup(name, net, key, useKeystore)
	if err != nil {
		return err
	}
	before, err := net.Chain.BalanceOf(ctx, payer)
	if err != nil {
		return err
	}

	c, err := b.spawn(s)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.initialize(); err != nil {
		return fmt.Errorf("%w\n%s", err, c.stderr())
	}
	// The first call waits for the server to be ready (ledger open, key
	// unlocked); it is not counted.
	if _, err := c.tool("x402_wallet", map[string]any{}); err != nil {
		return fmt.Errorf("%w\n%s", err, c.stderr())
	}
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				res, err := c.tool("x402_fetch", map[string]any{"url": net.APIURL + "/v2/weather?city=c" + strconv.FormatInt(i, 10)})
				if err == nil && !settled(res) {
					err = fmt.Errorf("not paid: %.300s", res)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	m, err := c.memory()
	if err != nil {
		return err
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%s: %d of %d paid fetches failed; first: %v\n%s", name, f, n, firstErr.Load(), c.stderr())
	}
	after, err := net.Chain.BalanceOf(ctx, payer)
	if err != nil {
		return err
	}
	spent := new(big.Int).Sub(before, after)
	fmt.Printf("paid, %s: %.0f paid requests/s (%d in %s, %d callers; payer spent %s atomic units on chain)\n",
		name, float64(n)/elapsed.Seconds(), n, elapsed.Round(time.Millisecond), callers, spent)
	fmt.Printf("RSS after %d paid requests, %s: %s (goal ≤ %d MB)\n\tpeak %s%s\n", n, name, m, rssGoalMB, mb(m.hwm), m.breakdown())
	if showStderr {
		fmt.Print(c.stderr())
	}
	holdFor(c)
	return nil
}

// settled reports whether an x402_fetch result records a settled payment.
func settled(res json.RawMessage) bool {
	var r struct {
		IsError    bool `json:"isError"`
		Structured struct {
			Payment *struct {
				Settled bool `json:"settled"`
			} `json:"payment"`
		} `json:"structuredContent"`
	}
	return json.Unmarshal(res, &r) == nil && !r.IsError && r.Structured.Payment != nil && r.Structured.Payment.Settled
}

// networkSetup writes a config for the local network with a policy that
// lets a benchmark pay without end: a key file, or the keystore format
// `x402-mcp init` writes.
func (b *bench) networkSetup(name string, net *localnet.Network, key *ecdsa.PrivateKey, useKeystore bool) (setup, error) {
	home := b.home("paid-" + strconv.FormatBool(useKeystore))
	dir := filepath.Join(home, "cfg")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return setup{}, err
	}
	write := func(name, text string) error { return os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600) }
	var wallet string
	if useKeystore {
		blob, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key},
			"correct horse battery staple", keystore.StandardScryptN, keystore.StandardScryptP)
		if err != nil {
			return setup{}, err
		}
		if err := write("keystore.json", string(blob)); err != nil {
			return setup{}, err
		}
		if err := write("passphrase", "correct horse battery staple\n"); err != nil {
			return setup{}, err
		}
		wallet = "keystore = \"keystore.json\"\npassphrase_file = \"passphrase\"\n"
	} else {
		if err := write("payer.key", fmt.Sprintf("0x%x\n", crypto.FromECDSA(key))); err != nil {
			return setup{}, err
		}
		wallet = "key_file = \"payer.key\"\n"
	}
	if err := write("policy.toml", `max_per_payment = "0.10"
max_authorization_seconds = 86400
max_payments_per_minute = "none"

[budget]
day = "none"
`); err != nil {
		return setup{}, err
	}
	chain := net.Chain
	cfg := fmt.Sprintf(`policy_file = "policy.toml"
ledger = "ledger.db"

[wallet]
%s
[[networks]]
id = %q
rpc_url = %q

[http]
allow_private = ["127.0.0.1"]

[[tokens]]
network = %q
address = %q
symbol = "USDC"
name = %q
version = %q
decimals = 6
currency = "USD"
`, wallet, chain.Network(), net.RPCURL, chain.Network(), chain.TokenAddress().Hex(), chain.TokenName(), chain.TokenVersion())
	if err := write("config.toml", cfg); err != nil {
		return setup{}, err
	}
	return setup{name: name, home: home, args: []string{"--config", filepath.Join(dir, "config.toml")}}, nil
}

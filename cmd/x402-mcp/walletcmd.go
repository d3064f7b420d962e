package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/x402-mcp/x402-mcp/tokens"
)

// walletCommand handles `x402-mcp wallet address|balance [--config FILE]`.
func walletCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, cfg, err := configOnly("wallet", args, stdout, stderr)
	if err != nil {
		return err
	}
	key, err := loadKey(cfg.Wallet, func(msg string) { fmt.Fprintln(stderr, msg) })
	if err != nil {
		return err
	}
	if key == nil {
		return errors.New("no wallet key is configured\n\thint: run x402-mcp init, or name a key file in the config")
	}
	payer := key.Address()
	if sub == "address" {
		fmt.Fprintln(stdout, payer.Hex())
		return nil
	}
	w := newWallet(cfg)
	defer w.Close()
	fmt.Fprintf(stdout, "payer %s\n", payer.Hex())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, b := range w.Balances(ctx, payer, cfg.Policy.Networks) {
		switch {
		case b.Amount != nil:
			fmt.Fprintf(tw, "%s\t%s %s\t(%s)\n", b.Network, tokens.FormatUnits(b.Amount, b.Token.Decimals), b.Token.Symbol, b.Token.Address.Hex())
		case b.Token.Symbol != "":
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Network, b.Token.Symbol, b.Problem)
		default:
			fmt.Fprintf(tw, "%s\t-\t%s\n", b.Network, b.Problem)
		}
	}
	return tw.Flush()
}

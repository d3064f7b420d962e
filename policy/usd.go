package policy

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/x402-mcp/x402-mcp/tokens"
)

// maxUSDDecimals bounds the precision of a USD limit.
const maxUSDDecimals = 18

// USD is an exact, non-negative amount of US dollars: units / 10^scale.
// The zero value is "not set".
type USD struct {
	units *big.Int
	scale uint8
}

// ParseUSD reads a decimal USD string such as "0.10". A leading "$" is
// accepted; signs, exponents and more than 18 decimals are not. Its errors
// do not quote s: the text may be anything pasted into a policy file or a
// tool call, a key among them.
func ParseUSD(s string) (USD, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "$")
	_, frac, _ := strings.Cut(t, ".")
	if len(frac) > maxUSDDecimals {
		return USD{}, fmt.Errorf("the USD amount has more than %d decimals (value not shown)", maxUSDDecimals)
	}
	units, err := tokens.ParseUnits(t, uint8(len(frac)))
	if err != nil {
		return USD{}, errors.New(`the USD amount is not a decimal number like "0.10" (value not shown)`)
	}
	return USD{units: units, scale: uint8(len(frac))}, nil
}

// MustUSD is ParseUSD for constants.
func MustUSD(s string) USD {
	u, err := ParseUSD(s)
	if err != nil {
		panic(err)
	}
	return u
}

// IsSet reports whether u holds a value (zero dollars is a value).
func (u USD) IsSet() bool { return u.units != nil }

// String renders u without trailing zeros ("0.1").
func (u USD) String() string {
	if u.units == nil {
		return "unset"
	}
	return tokens.FormatUnits(u.units, u.scale)
}

// Atomic converts u to atomic units of a token with the given decimals,
// rounding down: an integer amount a satisfies a <= u·10^d exactly when
// a <= floor(u·10^d), so comparing against the floor is exact.
func (u USD) Atomic(decimals uint8) *big.Int {
	if u.units == nil {
		return nil
	}
	n := new(big.Int).Mul(u.units, pow10(int(decimals)))
	return n.Quo(n, pow10(int(u.scale)))
}

// Cmp compares two set amounts exactly (-1, 0, +1).
func (u USD) Cmp(o USD) int {
	l := new(big.Int).Mul(u.units, pow10(int(o.scale)))
	r := new(big.Int).Mul(o.units, pow10(int(u.scale)))
	return l.Cmp(r)
}

// Min returns the smaller of two amounts; an unset one is ignored.
func (u USD) Min(o USD) USD {
	switch {
	case !u.IsSet():
		return o
	case !o.IsSet():
		return u
	case o.Cmp(u) < 0:
		return o
	}
	return u
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

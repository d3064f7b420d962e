package tokens

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxDecimalLen bounds decimal text accepted from outside.
const MaxDecimalLen = 80

// FormatUnits renders atomic units as a decimal with the token's decimals,
// dropping trailing zeros of the fraction: 10000 with 6 decimals is "0.01".
func FormatUnits(units *big.Int, decimals uint8) string {
	if units == nil {
		return "0"
	}
	neg := units.Sign() < 0
	digits := new(big.Int).Abs(units).String()
	d := int(decimals)
	if len(digits) <= d {
		digits = strings.Repeat("0", d-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-d], strings.TrimRight(digits[len(digits)-d:], "0")
	s := whole
	if frac != "" {
		s += "." + frac
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseUnits reads a non-negative decimal such as "0.25" into atomic units.
// More fraction digits than decimals is an error, never a rounding.
func ParseUnits(s string, decimals uint8) (*big.Int, error) {
	if len(s) == 0 || len(s) > MaxDecimalLen {
		return nil, errors.New(`the amount is not a decimal number like "0.25" (value not shown)`)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return nil, errors.New(`the amount is not a decimal number like "0.25" (value not shown)`)
	}
	if len(frac) > int(decimals) {
		return nil, fmt.Errorf("the amount has %d decimals; at most %d are allowed (value not shown)", len(frac), decimals)
	}
	frac += strings.Repeat("0", int(decimals)-len(frac))
	v, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		return nil, errors.New("the amount is not a decimal number (value not shown)")
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

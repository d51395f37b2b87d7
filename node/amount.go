package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// ErrBalanceTooLow is returned by addBalance when it would take away more
// tokens than the balance holds and clamping was not asked for.
var ErrBalanceTooLow = errors.New("balance too low")

// amountForms is what the amount errors suggest typing.
const amountForms = "write a whole number of tokens like 1000000, 1e12, 2.5e12, 0x10 or 1_000"

// ParseTokenAmount parses a token amount as people type it: an integer
// ("1000000", "-500"), exponent form ("1e9", "2.5e12"), hexadecimal ("0x10")
// or with digit separators ("1_000"). It must be a whole number. The command
// line and the RPC (through Amount) both parse with it, so both accept and
// refuse the same input with the same message.
func ParseTokenAmount(s string) (*big.Int, error) {
	s = strings.TrimSpace(s)
	f, ok := new(big.Float).SetPrec(256).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%w: token amount %q is not a number: %s", ErrInvalidArgument, s, amountForms)
	}
	if f.IsInf() {
		return nil, fmt.Errorf("%w: token amount %q is infinite: %s", ErrInvalidArgument, s, amountForms)
	}
	v, acc := f.Int(nil)
	if acc != big.Exact {
		return nil, fmt.Errorf("%w: token amount %q is not a whole number: %s", ErrInvalidArgument, s, amountForms)
	}
	return v, nil
}

// ParseBalanceChange parses an addBalance amount with ParseTokenAmount and
// checks that its magnitude fits a balance (at most MaxInt64 tokens).
func ParseBalanceChange(s string) (int64, error) {
	v, err := ParseTokenAmount(s)
	if err != nil {
		return 0, err
	}
	return balanceChange(v)
}

func balanceChange(v *big.Int) (int64, error) {
	if !v.IsInt64() || v.Int64() == math.MinInt64 {
		return 0, fmt.Errorf("%w: amount %s is out of range: balances hold at most %d tokens", ErrInvalidArgument, v, int64(math.MaxInt64))
	}
	return v.Int64(), nil
}

// Amount is a token amount as an RPC argument: a JSON number (1000, 1e12) or
// a string in any form ParseTokenAmount takes ("1e12", "0x10", "1_000"). It
// keeps the text; the method parses it, so a bad amount is reported by the
// method in the command line's words.
type Amount string

// UnmarshalJSON accepts a JSON number or string.
func (a *Amount) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Amount(s)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*a = Amount(b)
	default:
		return fmt.Errorf("amount must be a number or a string (%s), got %s", amountForms, abbreviate(string(b)))
	}
	return nil
}

// AddBalanceOptions is the optional third argument of vflux_addBalance.
type AddBalanceOptions struct {
	// Clamp lets a removal of more tokens than the balance holds empty the
	// balance instead of failing.
	Clamp bool `json:"clamp"`
}

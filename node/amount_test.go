package node

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/client"
)

func TestParseTokenAmountAcceptsWhatPeopleType(t *testing.T) {
	tests := []struct {
		in, want string // want "" = error
	}{
		{"0", "0"}, {"1000000", "1000000"}, {"1e9", "1000000000"}, {"2.5e12", "2500000000000"},
		{"-3e3", "-3000"}, {"1e30", "1000000000000000000000000000000"},
		{"0x10", "16"}, {"1_000", "1000"}, {" 42 ", "42"}, {"1e+21", "1000000000000000000000"},
		{"1.5", ""}, {"abc", ""}, {"", ""}, {"1e", ""}, {"Inf", ""}, {"NaN", ""}, {"0x", ""},
	}
	for _, tt := range tests {
		got, err := ParseTokenAmount(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ParseTokenAmount(%q) = %v, want an error", tt.in, got)
		case tt.want == "" && !strings.Contains(err.Error(), "1e12"):
			t.Errorf("ParseTokenAmount(%q) error %q does not show what to type", tt.in, err)
		case tt.want != "" && (err != nil || got.String() != tt.want):
			t.Errorf("ParseTokenAmount(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// addBalanceRaw calls vflux_addBalance with any JSON arguments.
func addBalanceRaw(n *testNode, args ...interface{}) ([2]uint64, error) {
	var res [2]uint64
	err := n.api.c.CallContext(context.Background(), &res, "vflux_addBalance", args...)
	return res, err
}

func TestAddBalanceOverRPCTakesTheCommandLinesAmountForms(t *testing.T) {
	n := startNode(t, testConfig(4), "", true)
	key, _ := crypto.GenerateKey()
	id := enode.PubkeyToIDV4(&key.PublicKey).String()
	steps := []struct {
		amount interface{}
		want   uint64
	}{
		{"1e12", 1e12},
		{"0x10", 1e12 + 16},
		{"1_000", 1e12 + 1016},
		{1000, 1e12 + 2016},     // a JSON number
		{2.5e3, 1e12 + 4516},    // a JSON number with a fraction part that is whole
		{"-2.5e3", 1e12 + 2016}, // negative removes
	}
	for _, st := range steps {
		res, err := addBalanceRaw(n, id, st.amount)
		if err != nil || res[1] != st.want {
			t.Fatalf("addBalance(%v) = %v, %v; want new balance %d", st.amount, res, err, st.want)
		}
	}
	// Bad amounts: the same message as the command line's parser.
	for _, bad := range []string{"1.5", "abc", "", "9223372036854775808", "1e30"} {
		_, err := addBalanceRaw(n, id, bad)
		_, cliErr := ParseBalanceChange(bad)
		if err == nil || cliErr == nil || err.Error() != cliErr.Error() {
			t.Errorf("addBalance(%q) error %v; the command line says %v", bad, err, cliErr)
		}
	}
	if _, err := addBalanceRaw(n, id, 1.5); err == nil || !strings.Contains(err.Error(), "not a whole number") {
		t.Errorf("addBalance(1.5 as a JSON number) error %v, want 'not a whole number'", err)
	}
	for _, bad := range []interface{}{true, map[string]int{"a": 1}} {
		if _, err := addBalanceRaw(n, id, bad); err == nil || !strings.Contains(err.Error(), "amount must be a number or a string") {
			t.Errorf("addBalance(%v) error %v, want 'amount must be a number or a string'", bad, err)
		}
	}
	info, err := n.api.ClientInfo(context.Background(), id)
	if err != nil || info[id].PosBalance != 1e12+2016 {
		t.Fatalf("balance after the refused amounts: %+v, %v; want %d (none of them changed it)", info[id], err, uint64(1e12+2016))
	}
}

func TestTakingMoreThanABalanceHoldsIsRefusedUnlessClamped(t *testing.T) {
	n := startNode(t, testConfig(4), "", true)
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	id := enode.PubkeyToIDV4(&key.PublicKey).String()
	if _, _, err := n.api.AddBalance(ctx, id, big.NewInt(1000)); err != nil {
		t.Fatal(err)
	}
	_, _, err := n.api.AddBalance(ctx, id, big.NewInt(-1001))
	if !containsErr(err, ErrBalanceTooLow) || !strings.Contains(err.Error(), "clamp") {
		t.Fatalf("removing 1001 of 1000 tokens: %v; want %v naming the clamp option", err, ErrBalanceTooLow)
	}
	// Exactly the balance is fine.
	if old, nw, err := n.api.AddBalance(ctx, id, big.NewInt(-1000)); err != nil || old != 1000 || nw != 0 {
		t.Fatalf("removing all 1000 tokens = [%d, %d], %v; want [1000, 0]", old, nw, err)
	}
	if _, _, err := n.api.AddBalance(ctx, id, big.NewInt(500)); err != nil {
		t.Fatal(err)
	}
	if old, nw, err := n.api.AddBalanceClamped(ctx, id, big.NewInt(-1e15)); err != nil || old != 500 || nw != 0 {
		t.Fatalf("clamped removal of 1e15 from 500 = [%d, %d], %v; want [500, 0]", old, nw, err)
	}
	if res, err := addBalanceRaw(n, id, "-1", map[string]bool{"clamp": false}); err == nil {
		t.Fatalf("removing 1 from an empty balance with clamp false = %v, want an error", res)
	}
}

func TestABadENRSaysWhatItShouldLookLike(t *testing.T) {
	for _, in := range []string{"enr:-abc", "enode://1234@127.0.0.1:30303", "nonsense"} {
		if _, err := ParseNodeID(in); in != "nonsense" && (!errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "not a valid ENR or enode URL")) {
			t.Errorf("ParseNodeID(%q) = %v", in, err)
		}
	}
	_, err := client.ParseServerNode("enr:-abc")
	if err == nil || !strings.Contains(err.Error(), "enr:-...") {
		t.Errorf("ParseServerNode of a cut ENR: %v, want a hint to copy the whole enr:-...", err)
	}
}

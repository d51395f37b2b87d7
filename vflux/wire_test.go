package vflux

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"net"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

func intOrInf(v int64) IntOrInf {
	var i IntOrInf
	i.SetInt64(v)
	return i
}

// TestWireVectors asserts every hex vector of SPEC 4.1 in both directions.
func TestWireVectors(t *testing.T) {
	cqParams, err := rlp.EncodeToBytes(&CapacityQueryReq{Bias: 180, AddTokens: []IntOrInf{intOrInf(0)}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		value interface{} // pointer to the value
		hex   string
	}{
		{"a les capacity query batch", &Requests{{Service: "les", Name: "cq", Params: cqParams}}, "d0cf836c657382637187c681b4c3c28080"},
		{"IntOrInf(-5)", ptr(intOrInf(-5)), "c20105"},
		{"IntOrInf(1000000)", ptr(intOrInf(1000000)), "c580830f4240"},
		{"a capacity query reply", &CapacityQueryReply{16000}, "c3823e80"},
		{"replies holding that reply", &Replies{mustHex("c3823e80")}, "c584c3823e80"},
		{"replies holding one empty reply", &Replies{{}}, "c180"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" encodes to its vector", func(t *testing.T) {
			enc, err := rlp.EncodeToBytes(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(enc); got != tt.hex {
				t.Fatalf("encoding is %s, want %s", got, tt.hex)
			}
		})
		t.Run(tt.name+" decodes from its vector", func(t *testing.T) {
			dec := reflect.New(reflect.TypeOf(tt.value).Elem())
			if err := rlp.DecodeBytes(mustHex(tt.hex), dec.Interface()); err != nil {
				t.Fatal(err)
			}
			if !wireEqual(dec.Interface(), tt.value) {
				t.Fatalf("decoded %+v, want %+v", dec.Elem().Interface(), reflect.ValueOf(tt.value).Elem().Interface())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// wireEqual compares decoded values, treating nil and empty byte slices alike
// and big.Ints by value.
func wireEqual(a, b interface{}) bool {
	ea, err1 := rlp.EncodeToBytes(a)
	eb, err2 := rlp.EncodeToBytes(b)
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb) && reflect.TypeOf(a) == reflect.TypeOf(b)
}

// TestCapacityQueryVectorFields decodes the batch vector down to its amounts.
func TestCapacityQueryVectorFields(t *testing.T) {
	var reqs Requests
	if err := rlp.DecodeBytes(mustHex("d0cf836c657382637187c681b4c3c28080"), &reqs); err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 || reqs[0].Service != "les" || reqs[0].Name != CapacityQueryName {
		t.Fatalf("decoded %+v", reqs)
	}
	var q CapacityQueryReq
	if err := rlp.DecodeBytes(reqs[0].Params, &q); err != nil {
		t.Fatal(err)
	}
	if q.Bias != 180 || len(q.AddTokens) != 1 || q.AddTokens[0].Int64() != 0 || q.AddTokens[0].Inf() != 0 {
		t.Fatalf("decoded query %+v", q)
	}
}

func TestIntOrInfConversions(t *testing.T) {
	huge := new(big.Int).Lsh(big.NewInt(1), 100)
	tests := []struct {
		name    string
		value   IntOrInf
		int64   int64
		inf     int
		bigInt  *big.Int // nil for infinities
		wantEnc string   // hex, "" to skip
	}{
		{"zero reads as zero", intOrInf(0), 0, 0, big.NewInt(0), "c28080"},
		{"a negative number keeps its magnitude in Value", intOrInf(-5), -5, 0, big.NewInt(-5), "c20105"},
		{"a large positive big.Int saturates int64 at MaxInt64", IntOrInf{Type: IntNonNegative, Value: *huge}, math.MaxInt64, 0, huge, ""},
		{"a large negative big.Int saturates int64 at MinInt64", IntOrInf{Type: IntNegative, Value: *huge}, math.MinInt64, 0, new(big.Int).Neg(huge), ""},
		{"minus 2^63 is exactly MinInt64", IntOrInf{Type: IntNegative, Value: *new(big.Int).Lsh(big.NewInt(1), 63)}, math.MinInt64, 0, new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 63)), ""},
		{"plus infinity maps to MaxInt64", IntOrInf{Type: IntPlusInf}, math.MaxInt64, 1, nil, "c20280"},
		{"minus infinity maps to MinInt64", IntOrInf{Type: IntMinusInf}, math.MinInt64, -1, nil, "c20380"},
		{"an unknown type reads as zero", IntOrInf{Type: 7, Value: *big.NewInt(99)}, 0, 0, big.NewInt(0), ""},
		{"SetInt64(MaxInt64) is plus infinity", intOrInf(math.MaxInt64), math.MaxInt64, 1, nil, "c20280"},
		{"SetInt64(MinInt64) is minus infinity", intOrInf(math.MinInt64), math.MinInt64, -1, nil, "c20380"},
		{"SetInt64(MaxInt64-1) stays finite", intOrInf(math.MaxInt64 - 1), math.MaxInt64 - 1, 0, big.NewInt(math.MaxInt64 - 1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.value
			if got := v.Int64(); got != tt.int64 {
				t.Errorf("Int64() = %d, want %d", got, tt.int64)
			}
			if got := v.Inf(); got != tt.inf {
				t.Errorf("Inf() = %d, want %d", got, tt.inf)
			}
			got := v.BigInt()
			if (got == nil) != (tt.bigInt == nil) || (got != nil && got.Cmp(tt.bigInt) != 0) {
				t.Errorf("BigInt() = %v, want %v", got, tt.bigInt)
			}
			if tt.wantEnc != "" {
				enc, err := rlp.EncodeToBytes(&v)
				if err != nil {
					t.Fatal(err)
				}
				if hex.EncodeToString(enc) != tt.wantEnc {
					t.Errorf("encoding %x, want %s", enc, tt.wantEnc)
				}
			}
		})
	}
}

func TestIntOrInfSetters(t *testing.T) {
	t.Run("setting an infinity clears Value", func(t *testing.T) {
		v := intOrInf(12345)
		v.SetInf(1)
		if v.Type != IntPlusInf || v.Value.Sign() != 0 {
			t.Fatalf("after SetInf(1): %+v", v)
		}
		v.SetBigInt(big.NewInt(-7))
		v.SetInf(-1)
		if v.Type != IntMinusInf || v.Value.Sign() != 0 {
			t.Fatalf("after SetInf(-1): %+v", v)
		}
		v.SetInf(0)
		if v.Type != IntNonNegative || v.Value.Sign() != 0 {
			t.Fatalf("after SetInf(0): %+v", v)
		}
	})
	t.Run("SetBigInt round-trips through BigInt and leaves its argument alone", func(t *testing.T) {
		for _, x := range []*big.Int{big.NewInt(0), big.NewInt(42), big.NewInt(-42), new(big.Int).Lsh(big.NewInt(-3), 90)} {
			arg := new(big.Int).Set(x)
			var v IntOrInf
			v.SetBigInt(arg)
			if v.BigInt().Cmp(x) != 0 || arg.Cmp(x) != 0 {
				t.Fatalf("SetBigInt(%v): BigInt %v, argument now %v", x, v.BigInt(), arg)
			}
			if v.Value.Sign() < 0 {
				t.Fatalf("SetBigInt(%v) stored a negative magnitude", x)
			}
		}
	})
	t.Run("SetBigInt(nil) sets zero", func(t *testing.T) {
		v := intOrInf(-3)
		v.SetBigInt(nil)
		if v.Int64() != 0 || v.Type != IntNonNegative {
			t.Fatalf("got %+v", v)
		}
	})
	t.Run("Int64 round-trips through SetInt64", func(t *testing.T) {
		for _, x := range []int64{0, 1, -1, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
			if v := intOrInf(x); v.Int64() != x {
				t.Fatalf("SetInt64(%d).Int64() = %d", x, v.Int64())
			}
		}
	})
}

func TestNoParamsEncodings(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		valid bool
	}{
		{"an empty byte string is accepted", nil, true},
		{"an empty RLP list is accepted", []byte{0xc0}, true},
		{"an empty RLP string is refused", []byte{0x80}, false},
		{"a list with content is refused", []byte{0xc1, 0x01}, false},
		{"an empty list with trailing bytes is refused", []byte{0xc0, 0x00}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidNoParams(tt.data); got != tt.valid {
				t.Fatalf("ValidNoParams(%x) = %v, want %v", tt.data, got, tt.valid)
			}
		})
	}
	t.Run("Add of struct{}{} encodes the empty list", func(t *testing.T) {
		var reqs Requests
		if _, err := reqs.Add("vfx", BalanceQueryName, struct{}{}); err != nil {
			t.Fatal(err)
		}
		if !ValidNoParams(reqs[0].Params) {
			t.Fatalf("params %x", reqs[0].Params)
		}
	})
}

func TestRequestsAdd(t *testing.T) {
	var reqs Requests
	for i := 0; i < params.MaxRequestsPerBatch; i++ {
		idx, err := reqs.Add("vfx", CapacityQueryName, &CapacityQueryReq{Bias: uint64(i), AddTokens: []IntOrInf{intOrInf(int64(i))}})
		if err != nil || idx != i {
			t.Fatalf("Add #%d: index %d, error %v", i, idx, err)
		}
	}
	if _, err := reqs.Add("vfx", CapacityQueryName, &CapacityQueryReq{}); !errors.Is(err, ErrBatchFull) {
		t.Fatalf("17th Add: error %v, want ErrBatchFull", err)
	}
	if len(reqs) != params.MaxRequestsPerBatch {
		t.Fatalf("a refused Add changed the batch: %d requests", len(reqs))
	}
	if _, err := new(Requests).Add("vfx", "x", make(chan int)); err == nil {
		t.Fatal("Add of an unencodable value succeeded")
	}
	var noParams Requests
	if i, err := noParams.Add("vfx", ServerInfoName, nil); err != nil || i != 0 || len(noParams[0].Params) != 0 || !ValidNoParams(noParams[0].Params) {
		t.Fatalf("Add with nil parameters: %v, %+v", err, noParams)
	}
}

func TestRepliesGet(t *testing.T) {
	replies := Replies{mustHex("c3823e80"), {}, mustHex("01")}
	var cq CapacityQueryReply
	if err := replies.Get(0, &cq); err != nil || len(cq) != 1 || cq[0] != 16000 {
		t.Fatalf("Get(0): %v, %v", cq, err)
	}
	tests := []struct {
		name string
		i    int
	}{
		{"an index below range has no reply", -1},
		{"an index past the end has no reply", 3},
		{"an empty reply is no reply", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := replies.Get(tt.i, &cq); !errors.Is(err, ErrNoReply) {
				t.Fatalf("Get(%d) error %v, want ErrNoReply", tt.i, err)
			}
		})
	}
	t.Run("a reply of the wrong type is a decode error, not ErrNoReply", func(t *testing.T) {
		err := replies.Get(2, &cq)
		if err == nil || errors.Is(err, ErrNoReply) {
			t.Fatalf("Get(2) error %v", err)
		}
	})
}

func TestCapacityQueryValidate(t *testing.T) {
	tests := []struct {
		name    string
		amounts int
		ok      bool
	}{
		{"a query without amounts is invalid", 0, false},
		{"a query with one amount is valid", 1, true},
		{"a query with the maximum of amounts is valid", params.MaxCapQueryAmounts, true},
		{"a query with one amount too many is invalid", params.MaxCapQueryAmounts + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := CapacityQueryReq{AddTokens: make([]IntOrInf, tt.amounts)}
			err := q.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidParams)) {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}

func TestReplyTypesRoundTrip(t *testing.T) {
	info := ServerInfoReply{MinCap: 1000, MaxCount: 100, MaxCap: 1e6, ActiveCount: 3, ActiveCap: 3000,
		PosFactors: [3]uint64{0, 1e12, 1000}, NegFactors: [3]uint64{1, 2, 3}, PosExpirationTC: 0, NegExpirationTC: 3600, ConnectedBias: 180}
	bal := BalanceReply{Pos: math.MaxUint64, Neg: 5}
	for name, v := range map[string]interface{}{"info": &info, "bal": &bal} {
		enc, err := rlp.EncodeToBytes(v)
		if err != nil {
			t.Fatal(err)
		}
		dec := reflect.New(reflect.TypeOf(v).Elem())
		if err := rlp.DecodeBytes(enc, dec.Interface()); err != nil || !reflect.DeepEqual(dec.Interface(), v) {
			t.Fatalf("%s: decoded %+v, %v", name, dec.Elem().Interface(), err)
		}
	}
}

func TestFreeClientIDAndAddressGroup(t *testing.T) {
	id := enode.ID{1, 2, 3}
	tests := []struct {
		name   string
		ip     net.IP
		freeID string
		group  string
	}{
		{"an IPv4 address is its own free ID and group", net.ParseIP("10.1.2.3"), "10.1.2.3", "10.1.2.3"},
		{"an IPv4-mapped IPv6 address reads as IPv4", net.ParseIP("::ffff:10.1.2.3"), "10.1.2.3", "10.1.2.3"},
		{"an IPv6 address is grouped by its /64", net.ParseIP("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64", "2001:db8:1:2::/64"},
		{"IPv4 loopback has the node ID as free ID but one group", net.ParseIP("127.0.0.1"), id.String(), "127.0.0.1"},
		{"IPv6 loopback has the node ID as free ID", net.ParseIP("::1"), id.String(), "::/64"},
		{"no address has the node ID as free ID and the empty group", nil, id.String(), ""},
		{"an address of bad length has the node ID as free ID", net.IP{1, 2, 3}, id.String(), ""},
		{"the unspecified address has the node ID as free ID", net.IPv4zero, id.String(), "0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FreeClientID(id, tt.ip); got != tt.freeID {
				t.Errorf("FreeClientID = %q, want %q", got, tt.freeID)
			}
			if got := AddressGroup(tt.ip); got != tt.group {
				t.Errorf("AddressGroup = %q, want %q", got, tt.group)
			}
		})
	}
}

func TestGroupKeyAgreesWithAddressGroup(t *testing.T) {
	ips := []net.IP{nil, net.IP{1, 2, 3}, net.ParseIP("10.0.0.1"), net.ParseIP("10.0.0.2"), net.ParseIP("::ffff:10.0.0.1"),
		net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2"), net.ParseIP("2001:db8:0:1::1"), net.ParseIP("::1"),
		net.ParseIP("::"), net.ParseIP("0.0.0.0"), net.ParseIP("::a00:1")}
	for _, a := range ips {
		for _, b := range ips {
			sameGroup := AddressGroup(a) == AddressGroup(b)
			sameKey := groupKeyOf(a) == groupKeyOf(b)
			if sameGroup != sameKey {
				t.Errorf("%v and %v: same AddressGroup %v, same key %v", a, b, sameGroup, sameKey)
			}
		}
	}
}

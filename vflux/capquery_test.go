package vflux

import (
	"bytes"
	"math"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/rlp"
)

// capQueryVectors are capacity query encodings, each accepted or rejected by
// the reflection decoder (rlp.DecodeBytes), as ok says.
var capQueryVectors = []struct {
	name string
	hex  string
	ok   bool
}{
	{"the SPEC 4.1 query", "c681b4c3c28080", true},
	{"no amounts (Validate rejects it, the decoder does not)", "c280c0", true},
	{"+Inf", "c580c3c20280", true},
	{"-Inf with a magnitude", "c680c4c30381ff", true},
	{"an unknown type", "c680c4c381ff80", true},
	{"a one-byte magnitude", "c580c3c2807f", true},
	{"a nine-byte magnitude", "ce80cccb8089010203040506070809", true},
	{"the largest bias", "ca88ffffffffffffffffc0", true},

	{"empty input", "", false},
	{"a string", "80", false},
	{"no fields", "c0", false},
	{"no amounts list", "c180", false},
	{"amounts as a string", "c28080", false},
	{"bias as the byte 0x00", "c200c0", false},
	{"bias in a one-byte string", "c38105c0", false},
	{"bias with a leading zero", "c48200b4c0", false},
	{"bias of nine bytes", "cb89010000000000000000c0", false},
	{"bias as a list", "c2c0c0", false},
	{"a third field", "c380c080", false},
	{"a trailing byte", "c280c000", false},
	{"a trailing value", "c280c0c0", false},
	{"a long list header for a short list", "f80280c0", false},
	{"a truncated list", "c380c0", false},
	{"a list header longer than the input", "c781b4c3c28080", false},
	{"an amount longer than its list", "c580c1c28080", false},
	{"a two-byte type", "c780c5c482010080", false},
	{"type as the byte 0x00", "c580c3c20080", false},
	{"type in a one-byte string", "c680c4c3810580", false},
	{"type as a list", "c580c3c2c080", false},
	{"magnitude as the byte 0x00", "c580c3c28000", false},
	{"magnitude in a one-byte string", "c680c4c3808105", false},
	{"magnitude with a leading zero", "c780c5c480820005", false},
	{"a nine-byte magnitude with a leading zero", "ce80cccb8089000102030405060708", false},
	{"magnitude as a list", "c580c3c280c0", false},
	{"magnitude with a long header", "cb80c9c880b8050102030405", false},
	{"an amount with a third field", "c680c4c3808080", false},
	{"an amount without magnitude", "c480c2c180", false},
	{"an amount that is a string", "c380c180", false},
}

// TestDecodeCapacityQueryReqAgreesWithReflection checks the hand-written
// decoder against rlp.DecodeBytes on hand-made vectors, valid and not, and on
// encoded queries of every kind of amount.
func TestDecodeCapacityQueryReqAgreesWithReflection(t *testing.T) {
	for _, v := range capQueryVectors {
		t.Run(v.name, func(t *testing.T) {
			data := mustHex(v.hex)
			if err := rlp.DecodeBytes(data, new(CapacityQueryReq)); (err == nil) != v.ok {
				t.Fatalf("the vector is wrong: rlp.DecodeBytes says %v, ok is %v", err, v.ok)
			}
			checkCapQueryDecoders(t, data)
			if !v.ok {
				req := CapacityQueryReq{Bias: 7, AddTokens: []IntOrInf{intOrInf(3)}}
				if DecodeCapacityQueryReq(data, &req) == nil || req.Bias != 7 || len(req.AddTokens) != 1 || req.AddTokens[0].Int64() != 3 {
					t.Fatalf("a rejected input changed the request to %+v", req)
				}
			}
		})
	}
	huge, _ := new(big.Int).SetString("123456789abcdef0123456789abcdef", 16)
	var posBig IntOrInf
	posBig.SetBigInt(huge)
	var negBig IntOrInf
	negBig.SetBigInt(new(big.Int).Neg(huge))
	amounts := []IntOrInf{intOrInf(0), intOrInf(1), intOrInf(-1), intOrInf(127), intOrInf(128), intOrInf(-1e18),
		intOrInf(math.MaxInt64), intOrInf(math.MinInt64), intOrInf(math.MaxInt64 - 1), posBig, negBig,
		{Type: IntNonNegative, Value: *new(big.Int).SetUint64(math.MaxUint64)}, {Type: 4, Value: *big.NewInt(9)}}
	for n := 0; n <= 16; n++ {
		req := CapacityQueryReq{Bias: uint64(n) * 1000, AddTokens: make([]IntOrInf, n)}
		for i := range req.AddTokens {
			req.AddTokens[i] = amounts[(n+i)%len(amounts)]
		}
		data := mustEncode(t, &req)
		var got CapacityQueryReq
		if err := DecodeCapacityQueryReq(data, &got); err != nil {
			t.Fatalf("%d amounts: %v", n, err)
		}
		if !sameCapQuery(&got, &req) {
			t.Fatalf("%d amounts: decoded %+v, encoded %+v", n, got, req)
		}
		checkCapQueryDecoders(t, data)
	}
}

// checkCapQueryDecoders fails unless DecodeCapacityQueryReq and rlp.DecodeBytes
// both reject data or both accept it with the same value.
func checkCapQueryDecoders(t *testing.T, data []byte) {
	t.Helper()
	var fast, slow CapacityQueryReq
	errFast := DecodeCapacityQueryReq(data, &fast)
	errSlow := rlp.DecodeBytes(data, &slow)
	if (errFast == nil) != (errSlow == nil) {
		t.Fatalf("%x: DecodeCapacityQueryReq says %v, rlp.DecodeBytes says %v", data, errFast, errSlow)
	}
	if errFast == nil && !sameCapQuery(&fast, &slow) {
		t.Fatalf("%x: DecodeCapacityQueryReq gives %+v, rlp.DecodeBytes %+v", data, fast, slow)
	}
}

// sameCapQuery compares two queries field by field, big.Ints by value.
func sameCapQuery(a, b *CapacityQueryReq) bool {
	if a.Bias != b.Bias || len(a.AddTokens) != len(b.AddTokens) || (a.AddTokens == nil) != (b.AddTokens == nil) {
		return false
	}
	for i := range a.AddTokens {
		x, y := &a.AddTokens[i], &b.AddTokens[i]
		if x.Type != y.Type || x.Value.Cmp(&y.Value) != 0 {
			return false
		}
	}
	return true
}

// TestDecodedAmountsDoNotShareStorage: the decoder stores small magnitudes
// side by side in one slice; changing one amount, even growing it past a word,
// must leave its neighbours alone.
func TestDecodedAmountsDoNotShareStorage(t *testing.T) {
	req := CapacityQueryReq{AddTokens: []IntOrInf{intOrInf(5), intOrInf(7), intOrInf(9)}}
	var got CapacityQueryReq
	if err := DecodeCapacityQueryReq(mustEncode(t, &req), &got); err != nil {
		t.Fatal(err)
	}
	first := &got.AddTokens[0].Value
	first.Add(first, big.NewInt(1))
	first.Lsh(first, 200)
	if want := new(big.Int).Lsh(big.NewInt(6), 200); first.Cmp(want) != 0 {
		t.Fatalf("the first amount is %v, want %v", first, want)
	}
	if a, b := got.AddTokens[1].Int64(), got.AddTokens[2].Int64(); a != 7 || b != 9 {
		t.Fatalf("changing the first amount changed the others to %d and %d", a, b)
	}
}

// TestEncodeCapacityQueryReplyAgreesWithReflection compares the encoder with
// rlp.EncodeToBytes on replies with short and long (one- and two-byte size)
// list headers.
func TestEncodeCapacityQueryReplyAgreesWithReflection(t *testing.T) {
	values := []uint64{0, 1, 127, 128, 255, 256, 16000, 1 << 32, math.MaxUint64}
	for _, n := range []int{0, 1, 2, 16, 55, 56, 300} {
		r := make(CapacityQueryReply, n)
		for i := range r {
			r[i] = values[(i*7+n)%len(values)]
		}
		want := mustEncode(t, r)
		if got := EncodeCapacityQueryReply(r); !bytes.Equal(got, want) {
			t.Fatalf("%d capacities: encoded %x, rlp.EncodeToBytes gives %x", n, got, want)
		}
	}
	if got := EncodeCapacityQueryReply(nil); !bytes.Equal(got, []byte{0xc0}) {
		t.Fatalf("a nil reply encodes to %x, want c0", got)
	}
}

package vflux

import (
	"bytes"
	"encoding/hex"
	"net"
	"testing"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// Fuzz targets for the request server and every request/reply decoder. Seed
// corpora live in testdata/fuzz/<FuzzName>/. Run one with, for example:
//
//	go test ./vflux/ -run '^$' -fuzz '^FuzzServeEncoded$' -fuzztime 30s

// bigService answers with replies as long as the request's parameters say, so
// the TALKREQ budget is exercised.
type bigService struct{}

func (bigService) Handle(id enode.ID, freeID, name string, data []byte) []byte {
	var n uint16
	if rlp.DecodeBytes(data, &n) != nil {
		return nil
	}
	return bytes.Repeat([]byte{0x42}, int(n))
}

func FuzzServeEncoded(f *testing.F) {
	f.Add(mustHex("d0cf836c657382637187c681b4c3c28080"))
	s := NewServer(ServerConfig{})
	defer s.Stop()
	s.Register(echoService{}, "les", "")
	s.Register(bigService{}, "big", "")
	f.Fuzz(func(t *testing.T, data []byte) {
		id, ip := enode.ID{1}, net.ParseIP("192.0.2.1")
		reqs, ok := decodeBatch(data)
		for _, talk := range []bool{false, true} {
			var out []byte
			if talk {
				out = s.ServeTalk(id, ip, data)
			} else {
				out = s.ServeEncoded(id, ip, data)
			}
			if !ok {
				if out != nil {
					t.Fatalf("an undecodable batch got an answer: %x", out)
				}
				continue
			}
			var replies Replies
			if err := rlp.DecodeBytes(out, &replies); err != nil {
				t.Fatalf("the answer does not decode: %v", err)
			}
			if len(replies) != len(reqs) || len(reqs) == 0 || len(reqs) > params.MaxRequestsPerBatch {
				t.Fatalf("%d replies for %d requests", len(replies), len(reqs))
			}
			if talk && len(out) > params.TalkReplyBudget {
				t.Fatalf("a TALKREQ answer of %d bytes", len(out))
			}
		}
	})
}

// fuzzDecoder decodes data into a fresh value, and when that works, checks
// that the value re-encodes and decodes to the same encoding.
func fuzzDecoder[T any](f *testing.F, seeds []string, use func(t *testing.T, v *T)) {
	for _, s := range seeds {
		f.Add(mustHex(s))
	}
	var zero T
	f.Add(mustEncode(f, &zero))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := new(T)
		if rlp.DecodeBytes(data, v) != nil {
			return
		}
		if use != nil {
			use(t, v)
		}
		enc, err := rlp.EncodeToBytes(v)
		if err != nil {
			t.Fatalf("a decoded value does not encode: %v", err)
		}
		w := new(T)
		if err := rlp.DecodeBytes(enc, w); err != nil {
			t.Fatalf("a re-encoded value does not decode: %v", err)
		}
		enc2, _ := rlp.EncodeToBytes(w)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
	})
}

func FuzzRequests(f *testing.F) {
	fuzzDecoder(f, []string{"d0cf836c657382637187c681b4c3c28080", "c0"}, func(t *testing.T, r *Requests) {
		if _, ok := decodeBatch(mustEncode(t, r)); ok != (len(*r) > 0 && len(*r) <= params.MaxRequestsPerBatch) {
			t.Fatalf("decodeBatch disagrees about a batch of %d", len(*r))
		}
	})
}

func FuzzReplies(f *testing.F) {
	fuzzDecoder(f, []string{"c584c3823e80", "c180"}, func(t *testing.T, r *Replies) {
		for i := -1; i <= len(*r); i++ {
			var cq CapacityQueryReply
			r.Get(i, &cq)
		}
	})
}

func FuzzCapacityQueryReq(f *testing.F) {
	fuzzDecoder(f, []string{"c781b4c3c28080", "c20105"}, func(t *testing.T, q *CapacityQueryReq) {
		q.Validate()
		for i := range q.AddTokens {
			useIntOrInf(t, &q.AddTokens[i])
		}
	})
}

func FuzzCapacityQueryReply(f *testing.F) {
	fuzzDecoder[CapacityQueryReply](f, []string{"c3823e80", "c0"}, nil)
}

func FuzzIntOrInf(f *testing.F) {
	fuzzDecoder(f, []string{"c20105", "c580830f4240", "c20280", "c20380"}, useIntOrInf)
}

func useIntOrInf(t *testing.T, v *IntOrInf) {
	i64, inf, b := v.Int64(), v.Inf(), v.BigInt()
	switch {
	case inf != 0 && b != nil:
		t.Fatalf("an infinity has a big.Int value %v", b)
	case inf == 0 && b == nil:
		t.Fatal("a finite value has no big.Int value")
	case inf == 0 && b.IsInt64() && b.Int64() != i64:
		t.Fatalf("Int64 %d disagrees with BigInt %v", i64, b)
	}
}

func FuzzBalanceReply(f *testing.F) {
	fuzzDecoder[BalanceReply](f, []string{"c20507"}, nil)
}

func FuzzServerInfoReply(f *testing.F) {
	info := ServerInfoReply{MinCap: 1000, MaxCount: 100, MaxCap: 1000000, ActiveCount: 3, ActiveCap: 3000,
		PosFactors: [3]uint64{0, 1000000, 1000}, NegFactors: [3]uint64{0, 1000000, 1000}, NegExpirationTC: 3600, ConnectedBias: 180}
	fuzzDecoder[ServerInfoReply](f, []string{hex.EncodeToString(mustEncode(f, &info))}, nil)
}

// FuzzDecodeCapacityQueryReq checks that the hand-written decoder of "cq"
// accepts what rlp.DecodeBytes accepts, with the same value, and rejects what
// it rejects.
func FuzzDecodeCapacityQueryReq(f *testing.F) {
	for _, v := range capQueryVectors {
		f.Add(mustHex(v.hex))
	}
	f.Fuzz(checkCapQueryDecoders)
}

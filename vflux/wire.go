package vflux

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// ErrNoReply is returned by Replies.Get when the batch has no reply at that index.
var ErrNoReply = errors.New("vflux: no reply for request")

// ErrBatchFull is returned by Requests.Add when the batch already holds
// params.MaxRequestsPerBatch requests.
var ErrBatchFull = errors.New("vflux: batch is full")

// Request is one named request to one service. Params is the RLP encoding of the
// request's own parameter struct.
type Request struct {
	Service, Name string
	Params        []byte
}

// Requests is a batch of requests, answered by a Replies of the same length.
type Requests []Request

// Replies holds one encoded reply per request of a batch; an empty byte string
// where a request had no answer (unknown service or name, bad parameters).
type Replies [][]byte

// Add encodes val and appends it to the batch as a request to service/name; a
// nil val means no parameters (empty Params). It returns the index of the
// request, which is the index of its reply.
func (r *Requests) Add(service, name string, val interface{}) (int, error) {
	if len(*r) >= params.MaxRequestsPerBatch {
		return -1, ErrBatchFull
	}
	var enc []byte
	if val != nil { // nil: a request without parameters (empty Params)
		var err error
		if enc, err = rlp.EncodeToBytes(val); err != nil {
			return -1, fmt.Errorf("encode %s/%s request: %w", service, name, err)
		}
	}
	*r = append(*r, Request{Service: service, Name: name, Params: enc})
	return len(*r) - 1, nil
}

// Get decodes the i-th reply into val. It returns ErrNoReply when i is out of
// range or the reply is empty (the server did not answer that request).
func (r Replies) Get(i int, val interface{}) error {
	if i < 0 || i >= len(r) || len(r[i]) == 0 {
		return ErrNoReply
	}
	if err := rlp.DecodeBytes(r[i], val); err != nil {
		return fmt.Errorf("decode reply %d: %w", i, err)
	}
	return nil
}

// ValidNoParams reports whether data is a valid parameter encoding for a
// request without parameters ("bal", "info"): an empty byte string or an empty
// RLP list (0xc0, what Requests.Add encodes for struct{}{}).
func ValidNoParams(data []byte) bool {
	return len(data) == 0 || (len(data) == 1 && data[0] == 0xc0)
}

// IntOrInf types.
const (
	IntNonNegative = iota // Value is the number itself
	IntNegative           // Value is the magnitude of a negative number
	IntPlusInf            // +Inf, Value is ignored
	IntMinusInf           // -Inf, Value is ignored
)

// IntOrInf is an integer of any size or an infinity, as the capacity query
// encodes token amounts. A Type other than the four IntOrInf types reads as 0.
type IntOrInf struct {
	Type  uint8
	Value big.Int
}

// BigInt returns the value as a big integer; infinities return nil.
func (i *IntOrInf) BigInt() *big.Int {
	switch i.Type {
	case IntNonNegative:
		return new(big.Int).Set(&i.Value)
	case IntNegative:
		return new(big.Int).Neg(&i.Value)
	case IntPlusInf, IntMinusInf:
		return nil
	default:
		return new(big.Int)
	}
}

// Inf returns 1 for +Inf, -1 for -Inf and 0 for a finite value.
func (i *IntOrInf) Inf() int {
	switch i.Type {
	case IntPlusInf:
		return 1
	case IntMinusInf:
		return -1
	default:
		return 0
	}
}

// Int64 returns the value as an int64, saturating at MinInt64 and MaxInt64;
// +Inf and -Inf map to MaxInt64 and MinInt64.
func (i *IntOrInf) Int64() int64 {
	switch i.Type {
	case IntNonNegative:
		if i.Value.IsInt64() {
			return i.Value.Int64()
		}
		return math.MaxInt64
	case IntNegative:
		if i.Value.IsInt64() {
			return -i.Value.Int64()
		}
		return math.MinInt64
	case IntPlusInf:
		return math.MaxInt64
	case IntMinusInf:
		return math.MinInt64
	default:
		return 0
	}
}

// SetBigInt sets a finite value; nil sets 0.
func (i *IntOrInf) SetBigInt(v *big.Int) {
	if v == nil {
		i.Type = IntNonNegative
		i.Value.SetInt64(0)
		return
	}
	if v.Sign() >= 0 {
		i.Type = IntNonNegative
		i.Value.Set(v)
	} else {
		i.Type = IntNegative
		i.Value.Neg(v)
	}
}

// SetInt64 sets the value; MaxInt64 and MinInt64 become +Inf and -Inf, so the
// saturating Int64 round-trips.
func (i *IntOrInf) SetInt64(v int64) {
	switch {
	case v == math.MaxInt64:
		i.SetInf(1)
	case v == math.MinInt64:
		i.SetInf(-1)
	case v >= 0:
		i.Type = IntNonNegative
		i.Value.SetInt64(v)
	default:
		i.Type = IntNegative
		i.Value.SetInt64(-v)
	}
}

// SetInf sets +Inf for sign > 0, -Inf for sign < 0 and 0 for sign == 0. Setting
// an infinity clears Value, so the encoding is canonical.
func (i *IntOrInf) SetInf(sign int) {
	i.Value.SetInt64(0)
	switch {
	case sign > 0:
		i.Type = IntPlusInf
	case sign < 0:
		i.Type = IntMinusInf
	default:
		i.Type = IntNonNegative
	}
}

// Request names of the client pool service.
const (
	CapacityQueryName = "cq"   // CapacityQueryReq -> CapacityQueryReply
	BalanceQueryName  = "bal"  // no params -> BalanceReply
	ServerInfoName    = "info" // no params -> ServerInfoReply
)

// CapacityQueryReq asks what capacity the requester could get right now if it
// added each of AddTokens to its balance, keeping its rank for Bias seconds.
type CapacityQueryReq struct {
	Bias      uint64 // seconds
	AddTokens []IntOrInf
}

// ErrInvalidParams is returned by CapacityQueryReq.Validate for a query without
// amounts or with more than params.MaxCapQueryAmounts.
var ErrInvalidParams = errors.New("vflux: invalid request parameters")

// Validate checks the number of amounts (1..params.MaxCapQueryAmounts).
func (r *CapacityQueryReq) Validate() error {
	if n := len(r.AddTokens); n == 0 || n > params.MaxCapQueryAmounts {
		return fmt.Errorf("capacity query with %d amounts: %w", n, ErrInvalidParams)
	}
	return nil
}

// CapacityQueryReply has one capacity per amount of the query; 0 means "you
// would not be admitted".
type CapacityQueryReply []uint64

// BalanceReply is the answer to "bal": the requesting node's own balances.
type BalanceReply struct {
	Pos, Neg uint64
}

// ServerInfoReply is the answer to "info": what a client needs to price its
// tokens before connecting. Factors are integers in thousandths of a token:
// [time per second, capacity per second per 1,000,000 units, per request cost unit].
type ServerInfoReply struct {
	MinCap, MaxCount, MaxCap, ActiveCount, ActiveCap uint64
	PosFactors, NegFactors                           [3]uint64
	PosExpirationTC, NegExpirationTC                 uint64 // seconds
	ConnectedBias                                    uint64 // seconds
}

// Service answers requests addressed to it by name. freeID is the requester's
// free-client identity (see FreeClientID), computed by the server from the
// transport's address so that every transport sees the same negative balance.
type Service interface {
	Handle(id enode.ID, freeID, name string, data []byte) []byte
}

// FreeClientID is the key of a client's negative balance: its IP address as a
// string (for IPv6, its /64 prefix), except for loopback, unspecified or missing
// addresses (local tests, pipes), where it is the node ID in hex so that local
// clients stay distinct.
func FreeClientID(id enode.ID, ip net.IP) string {
	if ip == nil || ip.IsLoopback() || ip.IsUnspecified() || (ip.To4() == nil && len(ip) != net.IPv6len) {
		return id.String()
	}
	return AddressGroup(ip)
}

// AddressGroup is the IP address grouping used for fairness: an IPv4 address as
// is, an IPv6 address by its /64 prefix. Unlike FreeClientID it groups loopback
// too, so a flood of fresh node IDs from one address stays one group.
func AddressGroup(ip net.IP) string {
	if ip == nil {
		return ""
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	if len(ip) != net.IPv6len {
		return ""
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

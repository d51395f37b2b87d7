package protocol

import (
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// Name and version of the capability, as negotiated in the RLPx hello.
const (
	// Name is the devp2p capability name.
	Name = params.ProtocolName
	// Version is the only version of the capability this package speaks.
	Version = params.ProtocolVersion
)

// Length is the number of message codes the capability reserves. Seven are
// defined; the rest up to 16 are reserved for later versions. They are part of
// the capability's code space so that an unknown code reaches our handler and
// is answered with DiscProtocolError (a code beyond Length is dropped by the
// p2p layer as a network error, or routed to another capability).
const Length = 16

// Message codes.
const (
	HandshakeMsg       = 0x00 // both directions, first message
	CapacityUpdateMsg  = 0x01 // server -> client
	VfluxRequestMsg    = 0x02 // client -> server
	VfluxReplyMsg      = 0x03 // server -> client
	CapacityRequestMsg = 0x04 // client -> server
	CapacityReplyMsg   = 0x05 // server -> client
	BusyMsg            = 0x06 // server -> client
)

// MaxMessageSize is the largest message accepted; larger ones are a protocol
// error. vflux batches are small (16 requests of at most 16 amounts), so this
// leaves ample room while bounding what one peer can make us buffer.
const MaxMessageSize = params.MaxMessageSize

// Handshake is the first message in both directions. The server fills MinCap
// and the metering constants so a client can pace itself; a client sends zeros
// there and the server ignores them.
type Handshake struct {
	Version    uint
	Server     bool
	MinCap     uint64
	BufferSecs uint64 // burst buffer, in seconds of capacity
	CostBase   uint64 // cost units of every served request
	CostPerKB  uint64 // cost units per KiB of request plus reply payload
}

// CapacityUpdate tells the client its new capacity. Requested is set when a
// CapacityRequest of the client caused (part of) the change.
type CapacityUpdate struct {
	Capacity  uint64
	Requested bool
}

// VfluxRequest carries a vflux batch (an encoded vflux.Requests).
type VfluxRequest struct {
	ReqID    uint64
	Requests rlp.RawValue
}

// VfluxReply carries the encoded vflux.Replies answering the request ReqID; an
// empty list when the server could not answer the batch at all.
type VfluxReply struct {
	ReqID   uint64
	Replies rlp.RawValue
}

// CapacityRequest asks for a new capacity, which the client must be able to
// hold for BiasSecs seconds against newcomers.
type CapacityRequest struct {
	ReqID    uint64
	Capacity uint64
	BiasSecs uint64
}

// CapacityReply answers a CapacityRequest. Capacity is what the client holds
// now; with Code CapOK it may be less than asked (a partial grant).
type CapacityReply struct {
	ReqID    uint64
	Capacity uint64
	Code     uint
	Msg      string
}

// CapacityReply codes.
const (
	CapOK         = 0 // granted; Capacity may be less than asked
	CapNoPriority = 1 // more than MinCap needs a positive balance
	CapInactive   = 2 // the client is inactive; activation is automatic
	CapBusy       = 3 // not served now; a metered-out request gets a Busy message instead, which carries the wait
	CapError      = 4 // any other failure; Msg says what
)

// Busy says the request ReqID was not served because it would overdraw the
// client's buffer; it fits after WaitMillis.
type Busy struct {
	ReqID      uint64
	WaitMillis uint64
}

// enrEntry is the "vfx" entry of a serving node's record: [version].
type enrEntry struct {
	Version uint
	Rest    []rlp.RawValue `rlp:"tail"` // later versions may add fields
}

// ENRKey implements enr.Entry.
func (enrEntry) ENRKey() string { return params.ENRKey }

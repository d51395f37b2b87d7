package protocol

import (
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
)

// emptyReplies is the encoding of an empty vflux.Replies, the answer to a batch
// the request server did not answer.
var emptyReplies = []byte{0xc0}

// handleVfluxRequest serves a vflux batch through the request server, metered
// and charged to the client's balance. A batch the request server does not
// answer (its limiter dropped it, or it is empty, oversize or undecodable) gets
// an empty Replies and is billed CostBase, not the full request cost.
func handleVfluxRequest(h *Handler, pp *peer, data []byte) error {
	var req VfluxRequest
	if err := rlp.DecodeBytes(data, &req); err != nil {
		return p2p.DiscProtocolError
	}
	if wait, ok := pp.meter.admit(AdmissionCost(h.cfg.CostBase, h.cfg.CostPerKB, len(data))); !ok {
		return h.busy(pp, req.ReqID, wait)
	}
	var replies []byte
	if h.cfg.Requests != nil {
		replies = h.cfg.Requests.ServeEncoded(pp.p.ID(), pp.ip, req.Requests)
	}
	dropped := replies == nil
	if dropped {
		droppedMeter.Mark(1)
		replies = emptyReplies
	}
	enc, err := rlp.EncodeToBytes(&VfluxReply{ReqID: req.ReqID, Replies: replies})
	if err != nil {
		return fmt.Errorf("encode vflux reply: %w", err) // unreachable: RawValue always encodes
	}
	if dropped {
		h.charge(pp, AdmissionCost(h.cfg.CostBase, h.cfg.CostPerKB, len(data)), h.cfg.CostBase)
	} else {
		cost := RequestCost(h.cfg.CostBase, h.cfg.CostPerKB, len(data), len(enc))
		h.charge(pp, cost, cost)
		servedMeter.Mark(1)
	}
	return sendRaw(pp.rw, VfluxReplyMsg, enc)
}

// handleCapacityRequest asks the pool for a new capacity. Any CapacityUpdate the
// request causes is sent before the CapacityReply.
func handleCapacityRequest(h *Handler, pp *peer, data []byte) error {
	var req CapacityRequest
	if err := rlp.DecodeBytes(data, &req); err != nil {
		return p2p.DiscProtocolError
	}
	if wait, ok := pp.meter.admit(h.cfg.CostBase); !ok {
		return h.busy(pp, req.ReqID, wait)
	}
	h.charge(pp, h.cfg.CostBase, h.cfg.CostBase)
	servedMeter.Mark(1)

	bias := time.Duration(min(req.BiasSecs, uint64(params.MaxQueryBias/time.Second))) * time.Second
	granted, err := h.cfg.Pool.SetCapacity(pp.Node(), req.Capacity, bias, true)
	// Flush first: the pool may have changed the capacity even on error (a
	// refused client can be cut back to minCap), and the reply must state the
	// capacity the client holds after the update it just received.
	if err := h.flushUpdate(pp); err != nil {
		return err
	}
	reply := CapacityReply{ReqID: req.ReqID, Capacity: granted}
	switch {
	case err == nil && granted == 0:
		reply.Code, reply.Msg = CapInactive, "inactive: capacity is granted on activation"
	case err == nil:
		reply.Code = CapOK
	case errors.Is(err, clientpool.ErrNoPriority):
		reply.Code, reply.Msg = CapNoPriority, err.Error()
	default:
		reply.Code, reply.Msg = CapError, err.Error()
	}
	if err != nil {
		reply.Capacity = pp.capacity
	}
	return p2p.Send(pp.rw, CapacityReplyMsg, &reply)
}

// charge takes an admitted request's cost from the client's flow control
// buffer (flow) and its balance (billed). They differ for a vflux batch the
// request server dropped or refused: the client only pays CostBase for it
// (SPEC 5 bills what is served), while the buffer is still charged the
// admission cost, so a flood of undecodable or dropped batches is paced by
// Busy like any other.
func (h *Handler) charge(pp *peer, flow, billed uint64) {
	pp.strikes = 0
	pp.meter.charge(flow)
	pp.balance.RequestServed(billed)
}

// busy refuses a request that would overdraw the buffer. After
// params.MaxBusyStrikes consecutive refusals the client is dropped as useless.
func (h *Handler) busy(pp *peer, reqID uint64, wait time.Duration) error {
	busyMeter.Mark(1)
	pp.strikes++
	if err := p2p.Send(pp.rw, BusyMsg, &Busy{ReqID: reqID, WaitMillis: uint64(wait / time.Millisecond)}); err != nil {
		return err
	}
	if pp.strikes >= params.MaxBusyStrikes {
		return p2p.DiscUselessPeer
	}
	return nil
}

// sendUpdate sends a capacity update to the client.
func (p *peer) sendUpdate(u CapacityUpdate) error {
	return p2p.Send(p.rw, CapacityUpdateMsg, &u)
}

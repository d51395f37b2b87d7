package clientpool

import (
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

var _ vflux.Service = (*ClientPool)(nil)

// Handle answers the pool's vflux requests (it is a vflux.Service): "cq" (the
// capacity query, SPEC 3.3), "bal" (the requester's own balances) and "info"
// (what a client needs to price its tokens). An unknown name or bad params
// return nil, as does any request after Stop.
func (p *ClientPool) Handle(id enode.ID, freeID, name string, data []byte) []byte {
	var reply interface{}
	switch name {
	case vflux.CapacityQueryName:
		var req vflux.CapacityQueryReq
		if err := vflux.DecodeCapacityQueryReq(data, &req); err != nil || len(req.AddTokens) == 0 || len(req.AddTokens) > params.MaxCapQueryAmounts {
			return nil
		}
		r := p.capacityQuery(id, freeID, &req)
		if r == nil {
			return nil
		}
		p.cqCounts.count(r)
		return vflux.EncodeCapacityQueryReply(r)
	case vflux.BalanceQueryName:
		if !emptyParams(data) {
			return nil
		}
		r, ok := p.balanceQuery(id, freeID)
		if !ok {
			return nil
		}
		reply = &r
	case vflux.ServerInfoName:
		if !emptyParams(data) {
			return nil
		}
		r, ok := p.serverInfo()
		if !ok {
			return nil
		}
		reply = &r
	default:
		return nil
	}
	enc, err := rlp.EncodeToBytes(reply)
	if err != nil {
		return nil
	}
	return enc
}

// emptyParams accepts the "no params" encodings: an empty byte string or an
// empty RLP list.
func emptyParams(data []byte) bool {
	return len(data) == 0 || (len(data) == 1 && data[0] == 0xc0)
}

// capacityQuery answers "cq" through the cached capacity curve, rebuilding it
// from a snapshot (without holding the lock for the rebuild) when the rule of
// SPEC 3.3 says so.
func (p *ClientPool) capacityQuery(id enode.ID, freeID string, req *vflux.CapacityQueryReq) vflux.CapacityQueryReply {
	bias := time.Duration(params.MaxQueryBias)
	if req.Bias < uint64(params.MaxQueryBias/time.Second) {
		bias = time.Duration(req.Bias) * time.Second
	}
	reply := make(vflux.CapacityQueryReply, len(req.AddTokens))
	synced := p.synced == nil || p.synced() // outside the lock: it is the caller's code
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	if !synced {
		p.mu.Unlock()
		return reply
	}
	now := p.clock.Now()
	b, c, err := p.balanceView(id, freeID, now)
	if err != nil { // no answer rather than one computed from a balance read as zero
		p.mu.Unlock()
		log.Debug("Capacity query not answered: a stored balance cannot be read", "id", id, "err", err)
		return nil
	}
	bias = maxDuration(bias, p.bias)
	var snap *curveSnapshot
	cv := p.curve
	if !p.curveValid(now) {
		snap = p.snapshotCurve(now)
		cv = snap.curve
	}
	xIdx := curveIndex(cv, c)
	rival := p.waitingRival(now, c)
	p.mu.Unlock()

	if snap != nil {
		snap.build()
		p.mu.Lock()
		if p.snapGen == cv.gen && !p.stopped {
			p.curve = cv
		}
		p.mu.Unlock()
	}
	for i := range req.AddTokens {
		add := req.AddTokens[i].Int64()
		reply[i] = cv.maxCapacity(b, add, bias, xIdx, rival)
		if reply[i] < cv.minCap {
			reply[i] = 0
		}
	}
	return reply
}

// balanceQuery answers "bal" for the requesting node.
func (p *ClientPool) balanceQuery(id enode.ID, freeID string) (vflux.BalanceReply, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return vflux.BalanceReply{}, false
	}
	b, _, err := p.balanceView(id, freeID, p.clock.Now())
	if err != nil {
		log.Debug("Balance query not answered: a stored balance cannot be read", "id", id, "err", err)
		return vflux.BalanceReply{}, false
	}
	return vflux.BalanceReply{Pos: b.pos, Neg: b.neg}, true
}

// balanceView returns the balances of node id with free-client ID freeID as
// BalanceOperation would see them: live values of a registered client and of
// a negative balance shared by connected clients (including unsettled time
// cost), stored values otherwise. It also returns the registered client, or
// the error of a stored balance that cannot be read.
func (p *ClientPool) balanceView(id enode.ID, freeID string, now mclock.AbsTime) (balSnap, *client, error) {
	c := p.clients[id]
	var b balSnap
	if c != nil {
		b = c.snapAt(now)
		if c.freeID == freeID {
			return b, c, nil
		}
	} else {
		pos, err := p.st.loadPos(id)
		if err != nil {
			return balSnap{}, nil, err
		}
		b = balSnap{pos: pos.Value(p.posExp.at(now)), posTau: p.posExp.tauNs(), posF: p.defPos, negF: p.defNeg}
	}
	b.neg = 0
	if nb := p.negs[freeID]; nb != nil && freeID != "" && len(nb.clients) > 0 {
		b.neg = nb.clients[0].snapAt(now).neg
	} else {
		neg, err := p.st.loadNeg(freeID)
		if err != nil {
			return balSnap{}, nil, err
		}
		b.neg = neg.Value(p.negExp.at(now))
	}
	return b, c, nil
}

// serverInfo answers "info". Factors travel in thousandths of a token: time
// per second, capacity per second per 1,000,000 units, request per cost unit.
func (p *ClientPool) serverInfo() (vflux.ServerInfoReply, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return vflux.ServerInfoReply{}, false
	}
	return vflux.ServerInfoReply{
		MinCap:          p.minCap,
		MaxCount:        p.maxCount,
		MaxCap:          p.maxCap,
		ActiveCount:     p.activeCount,
		ActiveCap:       p.activeCap,
		PosFactors:      wireFactors(p.defPos),
		NegFactors:      wireFactors(p.defNeg),
		PosExpirationTC: p.posExp.tc,
		NegExpirationTC: p.negExp.tc,
		ConnectedBias:   uint64(p.bias / time.Second),
	}, true
}

// wireFactors converts internal factors to the thousandths of "info".
func wireFactors(f PriceFactors) [3]uint64 {
	conv := func(v float64) uint64 {
		v = math.Round(v * 1000)
		if !(v > 0) {
			return 0
		}
		if v >= math.MaxUint64 {
			return math.MaxUint64
		}
		return uint64(v)
	}
	return [3]uint64{conv(f.TimeFactor * 1e9), conv(f.CapacityFactor * 1e9), conv(f.RequestFactor)}
}

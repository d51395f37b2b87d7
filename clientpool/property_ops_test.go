package clientpool_test

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// The operations of the randomized property test (property_test.go): each
// makes one public call with choices drawn from a chooser, checks what that
// call itself promises, and records it in the model. The pool-wide invariants
// are checked after every operation by poolModel.checkInvariants.

func (m *poolModel) opRegister(c chooser) {
	id := testID(c.intn(modelIDs))
	if m.isLiveID(id) {
		return // opRegisterDuplicate covers this
	}
	p := newTestPeer(id, modelFreeID(c.intn(modelFreeIDs+1)), modelAllowances[c.intn(len(modelAllowances))], m.clock)
	p.log = &m.vlog
	reentrant := c.intn(2) == 0
	if reentrant {
		p.onDisconnect = func(p *testPeer) {
			m.seen.disconnects++
			m.seen.reentrant++
			unregister(m.pool, p)
			delete(m.live, p)
		}
	} else {
		p.onDisconnect = func(p *testPeer) {
			m.seen.disconnects++
			m.deferred = append(m.deferred, p)
		}
	}
	var last uint64
	p.onUpdate = func(p *testPeer, u capUpdate) {
		switch {
		case u.cap == 0:
			m.inSince[p] = m.clock.Now()
			m.seen.deactivations++
		case last == 0:
			m.seen.activations++
		}
		last = u.cap
	}
	m.logf("Register(%x, free %q, allowance %v, reentrant %v)", id[28:], p.freeID, p.allowance, reentrant)
	m.peers = append(m.peers, p)
	m.live[p] = true // before Register: a re-entrant Unregister may run inside it
	m.inSince[p] = m.clock.Now()
	m.allow[p] = p.allowance
	if !register(m.pool, p) {
		m.failf("Register of a new ID %x returned nil", id[28:])
	}
	if p.allowance == 0 && p.Capacity() == 0 && !p.Disconnected() {
		if pos, _ := p.Balance().GetBalance(); pos == 0 {
			m.failf("client without priority with allowance 0 is inactive but not disconnected when Register returned")
		}
	}
}

func (m *poolModel) opRegisterDuplicate(c chooser) {
	orig := m.randomLive(c)
	if orig == nil {
		return
	}
	dup := newTestPeer(orig.node.ID(), orig.freeID, time.Hour, m.clock)
	dup.log = &m.vlog
	m.logf("Register(duplicate of %x)", orig.node.ID().Bytes()[28:])
	if b := m.pool.Register(dup); b != nil {
		m.failf("Register of an already registered ID returned a balance")
	}
	if u := dup.Updates(); len(u) != 0 || dup.Disconnected() {
		m.failf("rejected duplicate peer got callbacks: %v, disconnected %v", u, dup.Disconnected())
	}
}

func (m *poolModel) opUnregister(c chooser) {
	p := m.randomLive(c)
	if p == nil {
		return
	}
	id := p.node.ID()
	var pos, neg uint64
	if b := p.Balance(); b != nil {
		pos, neg = b.GetBalance()
	}
	m.logf("Unregister(%x) with balance (%d, %d), cap %d, disconnected %v", id[28:], pos, neg, p.Capacity(), p.Disconnected())
	unregister(m.pool, p)
	delete(m.live, p)
	m.removeDeferred(p)
	// Unregister settles and persists: the stored balance is what the client had,
	// except that a small value may be dropped (SPEC 2.5).
	gpos, gneg := getBalance(m.pool, id, p.freeID)
	if !balanceClose(gpos, pos) && !(pos <= params.BalanceDropThreshold && gpos == 0) {
		m.failf("positive balance %d after Unregister, was %d before", gpos, pos)
	}
	if !balanceClose(gneg, neg) && !(neg <= params.BalanceDropThreshold && gneg == 0) {
		m.failf("negative balance %d after Unregister, was %d before", gneg, neg)
	}
}

func (m *poolModel) removeDeferred(p *testPeer) {
	for i, q := range m.deferred {
		if q == p {
			m.deferred = append(m.deferred[:i], m.deferred[i+1:]...)
			return
		}
	}
}

func (m *poolModel) opFlushDeferred() {
	m.logf("Unregister %d deferred disconnected peers", len(m.deferred))
	for len(m.deferred) > 0 {
		p := m.deferred[0]
		m.deferred = m.deferred[1:]
		if m.live[p] {
			unregister(m.pool, p)
			delete(m.live, p)
		}
	}
}

func (m *poolModel) opSetLimits(c chooser) {
	count := uint64(c.intn(16))
	capacity := count * m.minCap * uint64(1+c.intn(4))
	switch c.intn(8) {
	case 0:
		capacity = uint64(c.intn(int(4*m.minCap) + 1)) // may be below minCap
	case 1:
		// "unlimited": the sum of the capacities told must still never
		// exceed it (and so never wrap past 2^64-1)
		capacity = math.MaxUint64 - uint64(c.intn(int(2*m.minCap)+1))
	}
	m.logf("SetLimits(%d, %d)", count, capacity)
	m.pool.SetLimits(count, capacity)
	if gc, gcap := m.pool.Limits(); gc != count || gcap != capacity {
		m.failf("Limits() = (%d, %d) after SetLimits(%d, %d)", gc, gcap, count, capacity)
	}
}

func randomFactors(c chooser) clientpool.PriceFactors {
	return clientpool.PriceFactors{
		TimeFactor:     modelTimeFactors[c.intn(len(modelTimeFactors))],
		CapacityFactor: modelCapFactors[c.intn(len(modelCapFactors))],
		RequestFactor:  modelReqFactors[c.intn(len(modelReqFactors))],
	}
}

func (m *poolModel) opSetDefaultFactors(c chooser) {
	pos, neg := randomFactors(c), randomFactors(c)
	if p := m.randomLive(c); p != nil && c.intn(2) == 0 {
		m.logf("SetPriceFactors(%x, %+v, %+v)", p.node.ID().Bytes()[28:], pos, neg)
		if b := p.Balance(); b != nil {
			b.SetPriceFactors(pos, neg)
			if gp, gn := b.GetPriceFactors(); gp != pos || gn != neg {
				m.failf("GetPriceFactors() = %+v, %+v after SetPriceFactors(%+v, %+v)", gp, gn, pos, neg)
			}
		}
		return
	}
	m.logf("SetDefaultFactors(%+v, %+v)", pos, neg)
	m.pool.SetDefaultFactors(pos, neg)
}

// randomPaidLive picks a live peer with a positive balance, if there is one.
func (m *poolModel) randomPaidLive(c chooser) *testPeer {
	var paid []*testPeer
	for _, p := range m.livePeers() {
		if b := p.Balance(); b != nil && !p.Disconnected() {
			if pos, _ := b.GetBalance(); pos > 0 {
				paid = append(paid, p)
			}
		}
	}
	if len(paid) == 0 {
		return nil
	}
	return paid[c.intn(len(paid))]
}

func (m *poolModel) opSetCapacity(c chooser) {
	p := m.randomLive(c)
	if c.intn(2) == 0 {
		if paid := m.randomPaidLive(c); paid != nil {
			p = paid
		}
	}
	if p == nil {
		return
	}
	_, maxCap := m.pool.Limits()
	var req uint64
	if maxCap > math.MaxInt32 { // near MaxUint64: the limit, everything, or any amount
		req = []uint64{maxCap, math.MaxUint64, maxCap - m.minCap, c.uint64()}[c.intn(4)]
	} else {
		req = uint64(c.intn(int(2*maxCap) + 2))
	}
	bias := modelBiases[c.intn(len(modelBiases))]
	cur := p.Capacity()
	var pos uint64
	if b := p.Balance(); b != nil {
		pos, _ = b.GetBalance() // reads without settling
	}
	disconnected := p.Disconnected()
	before := len(p.Updates())
	// A peer that unregisters from inside Disconnect runs a nested pool call
	// before SetCapacity returns; that call must not change the requester's
	// capacity again (say, by activating a waiting client that out-ranks it
	// at the capacity just granted).
	got, err := m.pool.SetCapacity(p.node, req, bias, true)
	m.logf("SetCapacity(%x, %d, %v) with cap %d, pos %d = %d, %v", p.node.ID().Bytes()[28:], req, bias, cur, pos, got, err)
	if disconnected {
		if got != 0 {
			m.failf("SetCapacity granted %d to a client told to disconnect", got)
		}
		return
	}
	target := req
	if target < m.minCap {
		target = m.minCap
	}
	// A client whose positive balance reads 0 (spent or decayed) has lost
	// priority: if it holds more than minCap, the pool cuts it to minCap
	// first (reported with requested=false) and serves the request from there.
	cut := pos == 0 && cur > m.minCap
	if cut {
		cur = m.minCap
	}
	if problem := m.checkSetCapacity(p, cur, target, pos, got, err, before, cut); problem != "" {
		m.failf("%s", problem)
	}
}

// checkSetCapacity checks a SetCapacity(target) answer for a client that had
// capacity cur (minCap if the pool had to cut it first, cut) and positive
// balance pos; before is the number of updates the peer had seen before the
// call. It returns what is wrong, or "".
func (m *poolModel) checkSetCapacity(p *testPeer, cur, target, pos uint64, got uint64, err error, before int, cut bool) string {
	switch {
	case cur == 0:
		if got != 0 || err != nil {
			return fmt.Sprintf("SetCapacity of an inactive client = %d, %v; want 0, nil", got, err)
		}
	case target <= cur:
		m.seen.decreases++
		if got != target || err != nil {
			return fmt.Sprintf("decrease from %d to %d returned %d, %v; a decrease always succeeds", cur, target, got, err)
		}
	case pos == 0:
		m.seen.noPriority++
		if !errors.Is(err, clientpool.ErrNoPriority) || got != cur {
			return fmt.Sprintf("raise from %d to %d without a positive balance returned %d, %v; want %d, ErrNoPriority", cur, target, got, err, cur)
		}
	default:
		if err != nil || got < cur || got > target {
			return fmt.Sprintf("raise from %d to %d returned %d, %v; want a grant in [%d, %d] and nil", cur, target, got, err, cur, target)
		}
		if got == target {
			m.seen.raises++
		} else {
			m.seen.partialGrants++
		}
	}
	if now := p.Capacity(); now != got {
		return fmt.Sprintf("SetCapacity returned %d but the peer was told %d", got, now)
	}
	// Every change this call made is reported as requested, except the
	// pool's own cut to minCap of a client whose balance ran out.
	u := p.Updates()[before:]
	if cut && (len(u) == 0 || u[0].cap != m.minCap || u[0].requested) {
		// the cut may have happened earlier (a settling read), not in this call
		if last := p.Updates(); before == 0 || last[before-1].cap != m.minCap {
			return fmt.Sprintf("client with no balance left held more than minCap, but SetCapacity did not cut it to %d first: updates %v", m.minCap, u)
		}
	} else if cut {
		u = u[1:]
	}
	for _, x := range u {
		if !x.requested {
			return fmt.Sprintf("requested capacity change reported with requested=false: updates %v", u)
		}
	}
	return ""
}

func (m *poolModel) opBalance(c chooser) {
	id, freeID, _ := m.randomIdentity(c)
	if p := m.randomLive(c); p != nil && c.intn(2) == 0 {
		id, freeID = p.node.ID(), p.freeID
	}
	if c.intn(2) == 0 {
		amount := modelAmounts[c.intn(len(modelAmounts))]
		m.seen.addBalance++
		var (
			before, after uint64
			old, new      uint64
			err           error
		)
		m.pool.BalanceOperation(id, freeID, func(op clientpool.AtomicBalanceOperator) {
			before, _ = op.GetBalance()
			old, new, err = op.AddBalance(amount)
			after, _ = op.GetBalance()
		})
		m.logf("AddBalance(%x, %d) from %d = %d, %d, %v", id[28:], amount, before, old, new, err)
		want := float64(before) + float64(amount)
		switch {
		case err != nil:
			m.seen.balanceErrors++
			if after != before {
				m.failf("failed AddBalance changed the balance from %d to %d", before, after)
			}
			if want < math.MaxInt64*0.999 {
				m.failf("AddBalance(%d) on %d failed: %v", amount, before, err)
			}
		case want > math.MaxInt64*1.001 || new > math.MaxInt64:
			m.failf("AddBalance(%d) on %d overflowed MaxInt64 without an error: new %d", amount, before, new)
		default:
			if want < 0 {
				want = 0
			}
			if !balanceClose(old, before) || !balanceClose(new, uint64(want)) || !balanceClose(after, new) {
				m.failf("AddBalance(%d) on %d returned (%d, %d), reads %d", amount, before, old, new, after)
			}
		}
		return
	}
	pos := modelSetAmounts[c.intn(len(modelSetAmounts))]
	neg := modelSetAmounts[c.intn(len(modelSetAmounts))]
	m.seen.setBalance++
	var (
		bpos, bneg, apos, aneg uint64
		err                    error
	)
	m.pool.BalanceOperation(id, freeID, func(op clientpool.AtomicBalanceOperator) {
		bpos, bneg = op.GetBalance()
		err = op.SetBalance(pos, neg)
		apos, aneg = op.GetBalance()
	})
	m.logf("SetBalance(%x, %q, %d, %d) from (%d, %d) = %v", id[28:], freeID, pos, neg, bpos, bneg, err)
	wantErr := pos > math.MaxInt64 || neg > math.MaxInt64 || (freeID == "" && neg != 0)
	switch {
	case wantErr && err == nil:
		m.failf("SetBalance(%d, %d) with free ID %q succeeded; want an error", pos, neg, freeID)
	case !wantErr && err != nil:
		m.failf("SetBalance(%d, %d) with free ID %q: %v", pos, neg, freeID, err)
	case err != nil:
		m.seen.balanceErrors++
		if apos != bpos || aneg != bneg {
			m.failf("failed SetBalance changed the balance from (%d, %d) to (%d, %d)", bpos, bneg, apos, aneg)
		}
	default:
		if !balanceClose(apos, pos) || !balanceClose(aneg, neg) {
			m.failf("SetBalance(%d, %d) reads back (%d, %d)", pos, neg, apos, aneg)
		}
	}
}

// queryTarget picks who asks a query: a live peer or a random unconnected ID.
func (m *poolModel) queryTarget(c chooser) (enode.ID, string, *testPeer) {
	if p := m.randomLive(c); p != nil && c.intn(2) == 0 {
		return p.node.ID(), p.freeID, p
	}
	return m.randomIdentity(c)
}

func (m *poolModel) opCapQuery(c chooser) {
	id, freeID, _ := m.queryTarget(c)
	n := 1 + c.intn(params.MaxCapQueryAmounts)
	amounts := make([]int64, n)
	for i := range amounts {
		amounts[i] = int64(c.uint64() >> (1 + uint(c.intn(63))))
	}
	if c.intn(4) == 0 {
		amounts[0] = 0
	}
	sort.Slice(amounts, func(i, j int) bool { return amounts[i] < amounts[j] })
	bias := uint64(c.intn(600))
	if c.intn(8) == 0 {
		bias = math.MaxUint64 // clamped to a day, no overflow
	}
	reply := capQuery(m.pool, id, freeID, bias, amounts...)
	m.logf("cq(%x, bias %d, %v) = %v", id[28:], bias, amounts, reply)
	if len(reply) != n {
		m.failf("cq with %d amounts answered %d capacities", n, len(reply))
	}
	m.seen.cqAnswered++
	if reply[n-1] != 0 {
		m.seen.cqNonZero++
	}
	_, maxCap := m.pool.Limits()
	pos, _ := getBalance(m.pool, id, freeID)
	for i, r := range reply {
		if r != 0 && (r < m.minCap || r > maxCap) {
			m.failf("cq answer %d for %d tokens is outside {0} and [minCap %d, maxCap %d]", r, amounts[i], m.minCap, maxCap)
		}
		if i > 0 && r < reply[i-1] {
			m.failf("cq answers fall with more tokens: %v for %v", reply, amounts)
		}
		if pos == 0 && amounts[i] == 0 && r > m.minCap {
			m.failf("free client answered %d, more than minCap", r)
		}
	}
}

func (m *poolModel) opCorruptQuery(c chooser) {
	id, freeID, _ := m.queryTarget(c)
	var data []byte
	switch c.intn(5) {
	case 0: // random bytes
		data = c.bytes(c.intn(64))
	case 1: // a valid query with one byte flipped
		data = encodeCapQuery(uint64(c.intn(300)), 0, 1e9, 1e12)
		data[c.intn(len(data))] ^= byte(1 + c.intn(255))
	case 2: // truncated
		data = encodeCapQuery(uint64(c.intn(300)), 0, 1e9, 1e12)
		data = data[:c.intn(len(data))]
	case 3: // too many amounts
		amounts := make([]int64, params.MaxCapQueryAmounts+1+c.intn(4))
		data = encodeCapQuery(0, amounts...)
	case 4: // odd IntOrInf types and infinities
		req := vflux.CapacityQueryReq{Bias: c.uint64(), AddTokens: make([]vflux.IntOrInf, 1+c.intn(4))}
		for i := range req.AddTokens {
			req.AddTokens[i].Type = uint8(c.intn(6))
			req.AddTokens[i].Value.SetBytes(c.bytes(c.intn(40)))
		}
		data, _ = rlp.EncodeToBytes(&req)
	}
	m.logf("corrupt cq(%x, %x)", id[28:], data)
	reply := m.pool.Handle(id, freeID, vflux.CapacityQueryName, data)
	var dec vflux.CapacityQueryReply
	if reply != nil && rlp.DecodeBytes(reply, &dec) != nil {
		m.failf("cq answered undecodable bytes %x", reply)
	}
	if len(reply) > 0 {
		m.seen.corruptAnswered++
	}
}

func (m *poolModel) opBalanceAndInfoQuery(c chooser) {
	id, freeID, p := m.queryTarget(c)
	var bal vflux.BalanceReply
	if enc := m.pool.Handle(id, freeID, vflux.BalanceQueryName, nil); rlp.DecodeBytes(enc, &bal) != nil {
		m.failf("\"bal\" reply %x does not decode", enc)
	}
	pos, neg := getBalance(m.pool, id, freeID)
	if p != nil && p.Balance() != nil {
		pos, neg = p.Balance().GetBalance()
	}
	m.logf("bal(%x, %q) = %+v", id[28:], freeID, bal)
	if bal.Pos != pos || bal.Neg != neg {
		m.failf("\"bal\" answered %+v, the balance is (%d, %d)", bal, pos, neg)
	}
	var info vflux.ServerInfoReply
	if enc := m.pool.Handle(id, freeID, vflux.ServerInfoName, []byte{0xc0}); rlp.DecodeBytes(enc, &info) != nil {
		m.failf("\"info\" reply %x does not decode", enc)
	}
	maxCount, maxCap := m.pool.Limits()
	count, capacity := m.pool.Active()
	posTC, negTC := m.pool.GetExpirationTCs()
	if info.MinCap != m.minCap || info.MaxCount != maxCount || info.MaxCap != maxCap ||
		info.ActiveCount != count || info.ActiveCap != capacity || info.PosExpirationTC != posTC ||
		info.NegExpirationTC != negTC || info.ConnectedBias != uint64(m.bias/time.Second) {
		m.failf("\"info\" answered %+v; pool has minCap %d, limits (%d, %d), active (%d, %d), TCs (%d, %d), bias %v",
			info, m.minCap, maxCount, maxCap, count, capacity, posTC, negTC, m.bias)
	}
}

func (m *poolModel) opRequestServed(c chooser) {
	p := m.randomLive(c)
	if p == nil || p.Balance() == nil {
		return
	}
	b := p.Balance()
	cost := uint64(c.intn(1000000))
	before, _ := b.GetBalance()
	got := b.RequestServed(cost)
	after, _ := b.GetBalance()
	m.logf("RequestServed(%x, %d) from %d = %d", p.node.ID().Bytes()[28:], cost, before, got)
	if (got > before && !balanceClose(got, before)) || !balanceClose(after, got) {
		m.failf("RequestServed(%d) on %d returned %d, reads %d", cost, before, got, after)
	}
}

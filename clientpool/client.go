package clientpool

import (
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// negBalance is a negative balance shared by the connected clients with the
// same free-client ID (one NAT, one IP), reference-counted by its clients list.
// The time cost its active clients charge to it is kept as one rate, settled
// for the whole group at once (settleNeg), so no operation loops over the
// clients sharing it. value holds everything charged up to settledAt.
type negBalance struct {
	freeID     string
	value      ExpiredValue
	dirty      bool           // changed since last persisted
	dropped    bool           // the last write dropped it as too small
	clients    []*client      // connected clients sharing it
	rate       float64        // sum of the members' negRate (tokens/ns)
	since      mclock.AbsTime // when the first of the connected clients registered
	reqCharged float64        // request cost charged to it since then (the group's request rate)
	settledAt  mclock.AbsTime // rate charged into value up to here
	// ceiling is the value the ordering keys of the members are computed
	// against while two or more clients share the balance (see doc.go,
	// Shared negative balances): the keys stay lower bounds of the members'
	// priorities until value reaches it, and then all members are re-keyed
	// against a new ceiling (refreshNeg). 0 = none set.
	ceiling uint64
}

// add adds amount at offset l; the free ID "" has no negative balance at all.
func (n *negBalance) add(amount float64, l LogOffset) {
	if n.freeID == "" || amount == 0 {
		return
	}
	addNeg(&n.value, amount, l)
	n.dirty = true
}

// addNeg adds a (possibly negative) amount to a balance value, saturating at 0
// and MaxInt64.
func addNeg(v *ExpiredValue, amount float64, l LogOffset) {
	if amount > math.MaxInt64 {
		amount = math.MaxInt64
	}
	if amount < -math.MaxInt64 {
		amount = -math.MaxInt64
	}
	if amount > 0 {
		if cur := v.Value(l); float64(cur)+amount >= math.MaxInt64 {
			amount = float64(math.MaxInt64 - cur)
		}
	}
	v.Add(int64(amount), l)
}

// client is one registered peer and its balances. It implements
// ConnectedBalance; every method takes the pool lock.
type client struct {
	pool      *ClientPool
	peer      Peer
	node      *enode.Node
	id        enode.ID
	freeID    string
	allowance time.Duration
	seq       uint64 // registration order, the tie-breaker of equal priorities

	since mclock.AbsTime // when Register accepted it (ClientState.Connected)

	pos        ExpiredValue
	inTotal    ExpiredValue // this client's share of the pool's total token amount
	neg        *negBalance
	posF       PriceFactors
	negF       PriceFactors
	posDirty   bool
	posDropped bool    // the last write dropped pos as too small
	spendRate  float64 // share of the pool's spendRate, at lastSettle
	negRate    float64 // share of neg.rate: the time price charged to the shared balance

	registered   bool // false after Unregister
	disconnected bool // told to Disconnect: out of the active and inactive sets
	ranOut       bool // its positive balance ran out since it was last activated (see ReasonBalanceRanOut)
	active       bool
	capacity     uint64
	told         uint64         // capacity last reported to the peer (see callbacks.run)
	delivering   bool           // a goroutine is delivering a capacity update to the peer
	lastSettle   mclock.AbsTime // time cost settled up to here while active
	activeTime   time.Duration  // total time active, for the average request rate
	reqCost      float64        // total request cost served

	key      float64 // active: lower bound of the priority, stored with its kind's drift (drift.go)
	slotKey  float64 // active: the same of the priority at minCap (its rank for a slot)
	paidKey  bool    // active: the keys are of the priority kind (paidKeys), else free
	ikClass  int     // inactive order: 1 priority client, 0 free client
	ikLog    float64 // inactive order within the class, offset-independent
	activeIx int
	slotIx   int
	bestIx   int
	worstIx  int

	timer       clientTimer    // threshold timer while active
	allowTimer  clientTimer    // inactive allowance timer
	allowSince  mclock.AbsTime // when the running (or paused) allowance started
	allowPaused bool           // activated while the allowance ran: resume it if the peer never saw the activation
	decayTimer  clientTimer    // inactive priority client: fires when its positive balance decays away

	planGen  uint64 // planner scratch
	planCap  uint64
	curveGen uint64 // capacity curve snapshot index
	curveIdx int32
}

// reqRate is the average request cost per ns while active.
func (c *client) reqRate() float64 {
	if c.activeTime <= 0 {
		return 0
	}
	return c.reqCost / float64(c.activeTime)
}

// snapAt returns the client's balances at time now (including the time cost
// not yet settled, computed exactly as settle would) without changing
// anything. The negative balance includes the unsettled time cost of the whole
// group sharing it (one rate, O(1)), apart from the part a sibling with a
// positive balance charges itself, which is settled by that sibling (see
// doc.go).
func (c *client) snapAt(now mclock.AbsTime) balSnap {
	p := c.pool
	pos, neg := c.pos, p.negAt(c.neg, now)
	if c.active && now > c.lastSettle {
		c.chargeInterval(&pos, &neg, now)
	}
	posL := p.posExp.at(now)
	return balSnap{
		pos:      pos.Value(posL),
		neg:      neg.Value(p.negExp.at(now)),
		posF:     c.posF,
		negF:     c.negF,
		reqRate:  c.reqRate(),
		posExact: exactValue(pos, posL),
		posTau:   p.posExp.tauNs(),
	}
}

// chargeInterval charges the time cost of [lastSettle, now] to pos and neg
// (SPEC 2.2) at the expiration offsets of the interval's midpoint. It reports
// what was charged. The uncovered part goes to neg only when the client is not
// in its group's rate (negRate 0): a member of the rate is charged by
// settleNeg.
func (c *client) chargeInterval(pos, neg *ExpiredValue, now mclock.AbsTime) (posCharged, negCharged bool) {
	p := c.pool
	dt := time.Duration(now - c.lastSettle)
	mid := c.lastSettle + mclock.AbsTime(dt/2)
	posL, negL := p.posExp.at(mid), p.negExp.at(mid)
	posV := pos.Value(posL)
	pc, nc := chargeTime(posV, c.posF.timePrice(c.capacity, 0), c.negF.timePrice(c.capacity, 0), dt)
	if pc > 0 {
		if pc >= float64(posV) {
			*pos = ExpiredValue{}
		} else {
			pos.Add(-int64(pc), posL)
		}
		posCharged = true
	}
	if nc > 0 && c.freeID != "" && c.negRate == 0 {
		addNeg(neg, nc, negL)
		negCharged = true
	}
	return posCharged, negCharged
}

// exactValue is the unrounded amount of v at offset l.
func exactValue(v ExpiredValue, l LogOffset) float64 {
	if v.IsZero() {
		return 0
	}
	return float64(v.Base) * math.Exp2(float64(v.Exp)-l.Float64())
}

// settle charges the time cost since the last settlement. It reports whether
// the positive balance ran out now, by spending or by decay (a value that
// reads 0 is cleared here, and only here, so that every caller hands the loss
// to lostPriority). The shared negative balance is settled too, and when it
// reached its ceiling all clients sharing it are re-keyed (negGrew).
func (c *client) settle(now mclock.AbsTime) (exhausted bool) {
	exhausted = c.settleOwn(now)
	c.pool.negGrew(c.neg, now)
	return exhausted
}

func (c *client) settleOwn(now mclock.AbsTime) (exhausted bool) {
	p := c.pool
	p.settleNeg(c.neg, now)
	had := !c.pos.IsZero()
	if !c.active || now <= c.lastSettle {
		if now > c.lastSettle {
			c.lastSettle = now
		}
		if had && c.pos.Value(p.posExp.at(now)) == 0 { // decayed away
			c.pos = ExpiredValue{}
			c.posDirty = true
			p.unwritten = append(p.unwritten, c)
			p.updateTotal(c)
			p.updateSpend(c)
			p.updateNegRate(c, now)
			return true
		}
		return false
	}
	posCharged, negCharged := c.chargeInterval(&c.pos, &c.neg.value, now)
	if had && !c.pos.IsZero() && c.pos.Value(p.posExp.at(now)) == 0 {
		c.pos = ExpiredValue{} // spent or decayed to nothing
		posCharged = true
	}
	if posCharged {
		exhausted = had && c.pos.IsZero()
		c.posDirty = true
		p.updateTotal(c)
	}
	if negCharged {
		c.neg.dirty = true
	}
	p.spendRate -= c.spendRate
	p.spendRateAt -= c.spendRate * float64(c.lastSettle)
	c.spendRate = 0
	c.activeTime += time.Duration(now - c.lastSettle)
	c.lastSettle = now
	p.updateSpend(c)
	p.updateNegRate(c, now)
	return exhausted
}

// hasPriority reports whether the client has a positive balance now. It
// changes nothing: a value that decayed to nothing is cleared by settle, which
// reports the loss so it goes through lostPriority.
func (c *client) hasPriority() bool {
	return !c.pos.IsZero() && c.pos.Value(c.pool.posExp.at(c.pool.clock.Now())) > 0
}

// ----- ConnectedBalance -----

// GetBalance returns the current positive and negative balance.
func (c *client) GetBalance() (pos, neg uint64) {
	p := c.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	b := c.snapAt(p.clock.Now())
	return b.pos, b.neg
}

// GetRawBalance returns the balances as expiring values (settled up to now for
// a registered client).
func (c *client) GetRawBalance() (pos, neg ExpiredValue) {
	p := c.pool
	var acts callbacks
	p.mu.Lock()
	if now := p.clock.Now(); c.registered && !p.stopped {
		if c.settle(now) {
			p.lostPriority(c, now, &acts)
		}
	}
	pos, neg = c.pos, c.neg.value
	p.mu.Unlock()
	acts.run(p)
	return pos, neg
}

// GetPriceFactors returns the client's price factors.
func (c *client) GetPriceFactors() (pos, neg PriceFactors) {
	p := c.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.posF, c.negF
}

// SetPriceFactors changes the client's price factors from now on. Negative or
// non-finite factors are ignored.
func (c *client) SetPriceFactors(pos, neg PriceFactors) {
	if !pos.valid() || !neg.valid() {
		return
	}
	p := c.pool
	var acts callbacks
	p.mu.Lock()
	now := p.clock.Now()
	if c.registered && !p.stopped && c.settle(now) {
		p.lostPriority(c, now, &acts)
	}
	c.posF, c.negF = pos, neg
	if c.registered && !p.stopped {
		p.priorityChanged(c, now, &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// RequestServed charges a served request of the given cost (SPEC 2.2) and
// returns the new positive balance. The cost is charged to the positive
// balance at its RequestFactor; the uncovered fraction goes to the negative
// balance at its RequestFactor. Fix: when the positive balance is non-zero but
// its RequestFactor is 0, the whole cost goes to the negative side.
func (c *client) RequestServed(cost uint64) uint64 {
	p := c.pool
	var acts callbacks
	p.mu.Lock()
	now := p.clock.Now()
	if !c.registered || p.stopped {
		v := c.pos.Value(p.posExp.at(now))
		p.mu.Unlock()
		return v
	}
	exhausted := c.settle(now)
	posL, negL := p.posExp.at(now), p.negExp.at(now)
	posV := c.pos.Value(posL)
	fcost := float64(cost)
	c.reqCost += fcost
	uncovered := fcost
	if posV > 0 && c.posF.RequestFactor > 0 {
		pc := fcost * c.posF.RequestFactor
		if pc < float64(posV) {
			c.pos.Add(-int64(pc), posL)
			uncovered = 0
		} else {
			uncovered = fcost * (1 - float64(posV)/pc)
			c.pos = ExpiredValue{}
			exhausted = true
		}
		c.posDirty = true
		p.updateTotal(c)
	}
	if nc := uncovered * c.negF.RequestFactor; nc > 0 {
		c.neg.add(nc, negL)
		c.neg.reqCharged += nc
		p.negGrew(c.neg, now) // the siblings' keys hold until the ceiling
	}
	if exhausted {
		p.lostPriority(c, now, &acts)
	}
	p.priorityChanged(c, now, &acts)
	v := c.pos.Value(posL)
	p.mu.Unlock()
	acts.run(p)
	return v
}

// ----- ordering keys -----

// setInactiveKey computes the offset-independent order of an inactive client:
// decay scales every balance of a kind alike, so comparing log2 of the values
// at offset zero orders clients as their priorities at any common offset do.
func (c *client) setInactiveKey() {
	if c.hasPriority() {
		c.ikClass = 1
		c.ikLog = math.Log2(float64(c.pos.Base)) + float64(c.pos.Exp)
		return
	}
	c.ikClass = 0
	if p := c.pool; c.neg.shared() {
		// against the group's ceiling, as the active keys (see doc.go)
		now := p.clock.Now()
		l := p.negExp.at(now)
		c.ikLog = -negLog(p.keyNeg(c.neg, p.negAt(c.neg, now).Value(l), now), l)
		return
	}
	if c.neg.value.IsZero() {
		c.ikLog = math.Inf(1)
	} else {
		c.ikLog = -(math.Log2(float64(c.neg.value.Base)) + float64(c.neg.value.Exp))
	}
}

// betterInactive orders inactive clients, best first.
func betterInactive(a, b *client) bool {
	if a.ikClass != b.ikClass {
		return a.ikClass > b.ikClass
	}
	if a.ikLog != b.ikLog {
		return a.ikLog > b.ikLog
	}
	return a.seq < b.seq
}

// lowerActive orders active clients by their priority lower bound, lowest
// first; ties go to the longest registered.
func lowerActive(a, b *client) bool {
	if a.paidKey != b.paidKey {
		return b.paidKey // every free client ranks below every priority client
	}
	if a.key != b.key {
		return a.key < b.key
	}
	return a.seq < b.seq
}

// lowerSlot orders active clients by the lower bound of their priority at
// minCap, lowest first; ties go to the longest registered.
func lowerSlot(a, b *client) bool {
	if a.paidKey != b.paidKey {
		return b.paidKey
	}
	if a.slotKey != b.slotKey {
		return a.slotKey < b.slotKey
	}
	return a.seq < b.seq
}

// armTimer (re)arms the client's threshold timer (SPEC 2.4): it fires when the
// positive balance runs out, when a shared negative balance reaches the
// ceiling its members are keyed against, or when the client's keys stop being
// lower bounds of its priority under its kind's drift (rekeyDue: only for a
// client falling faster than the drift), whichever comes first. A generation
// counter makes a stale firing (one that raced with Stop) harmless, so the
// timer always re-arms.
func (p *ClientPool) armTimer(c *client, b *balSnap) {
	if !c.active || p.stopped {
		c.timer.stop()
		return
	}
	s, sMin := p.fallRates(c, b)
	d := p.rekeyDue(keyKind(c), s, sMin)
	posPrice := c.posF.timePrice(c.capacity, 0)
	negPrice := c.negF.timePrice(c.capacity, 0)
	if b.pos > 0 {
		// Spending and decay both count (Fix: decay alone, say at price 0,
		// used to leave the timer unarmed): the balance runs out when it
		// reads 0.
		pos := b.posExact
		if pos <= 0 {
			pos = float64(b.pos)
		}
		gone := 0.0
		if b.posTau > 0 {
			gone = posGoneBelow
		}
		d = min(d, durationOf(untilBelow(pos, gone, posPrice, b.posTau)))
	} else if nb := c.neg; nb.shared() && c.freeID != "" && nb.ceiling < math.MaxInt64 {
		// The group charges the balance at its whole rate, and the members'
		// keys hold only up to the ceiling: fire there. The gap is taken in
		// integers: near MaxInt64 a float64 cannot tell the two apart.
		if rate := max(negPrice, nb.rate); rate > 0 {
			var gap uint64
			if nb.ceiling > b.neg {
				gap = nb.ceiling - b.neg
			}
			d = min(d, durationOf(float64(gap)/rate))
		}
	}
	if d == time.Duration(math.MaxInt64) {
		c.timer.stop()
		return
	}
	if d < params.MinTimerDelay {
		d = params.MinTimerDelay
	}
	// Keep an armed timer that is due no later: re-keying (say, because a
	// client sharing the free-client ID was settled) must not postpone a
	// threshold that is already due. With mclock.Simulated the re-key may run
	// at the end of a Run window while this timer is due inside it. An early
	// firing only settles and re-keys the client, which re-arms the timer.
	due := p.clock.Now().Add(d)
	if c.timer.armed() && c.timer.due <= due {
		return
	}
	c.timer.arm(p.clock, d, func(gen uint64) { p.onTimer(c, gen) })
}

// durationOf converts nanoseconds to a Duration, saturating.
func durationOf(ns float64) time.Duration {
	switch {
	case !(ns > 0):
		return 0
	case ns >= math.MaxInt64:
		return time.Duration(math.MaxInt64)
	default:
		return time.Duration(ns)
	}
}

package clientpool

import (
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/vflux-net/vflux/params"
)

// This file keeps the negative balances shared by clients with one free-client
// ID in O(1) per operation, whatever the number of clients sharing one (see
// doc.go, Shared negative balances). Each function is called with the pool
// lock held.

// negCeilingDivisor sets the relative headroom of a shared balance's ceiling:
// value/32 above the value, so the members are re-keyed at most once per 3%
// of growth (about 32*ln(growth) times in all), never once per request.
const negCeilingDivisor = 32

// negAt returns the shared balance at now including the group's unsettled
// time cost, without changing it.
func (p *ClientPool) negAt(nb *negBalance, now mclock.AbsTime) ExpiredValue {
	v := nb.value
	if nb.rate > 0 && now > nb.settledAt && nb.freeID != "" {
		dt := time.Duration(now - nb.settledAt)
		addNeg(&v, nb.rate*float64(dt), p.negExp.at(nb.settledAt+mclock.AbsTime(dt/2)))
	}
	return v
}

// settleNeg charges the group's time cost up to now into the shared value.
func (p *ClientPool) settleNeg(nb *negBalance, now mclock.AbsTime) {
	if now <= nb.settledAt {
		return
	}
	if nb.rate > 0 && nb.freeID != "" {
		nb.value = p.negAt(nb, now)
		nb.dirty = true
	}
	nb.settledAt = now
}

// updateNegRate refreshes c's share of its group's rate: the time price of an
// active client without a positive balance is charged by the group (settleNeg),
// anyone else's uncovered time cost by its own settle (chargeInterval).
func (p *ClientPool) updateNegRate(c *client, now mclock.AbsTime) {
	nb := c.neg
	p.settleNeg(nb, now)
	nb.rate -= c.negRate
	c.negRate = 0
	if c.active && c.registered && c.freeID != "" && c.pos.IsZero() {
		c.negRate = c.negF.timePrice(c.capacity, 0)
	}
	nb.rate += c.negRate
	if nb.rate < 1e-12 {
		nb.rate = 0 // no drift once nobody is charged
	}
}

// shared reports whether the balance is shared by two or more connected
// clients, the case where their keys are computed against the ceiling.
func (nb *negBalance) shared() bool {
	return nb.freeID != "" && len(nb.clients) >= 2
}

// negHeadroom is how far above neg a shared balance's ceiling is set: the
// group's cost over the priority horizon (its time rate, and twice its average
// request charge rate since it was formed, as estimatePriority counts one
// session's requests), and at least neg/32.
func (p *ClientPool) negHeadroom(nb *negBalance, neg uint64, now mclock.AbsTime) uint64 {
	horizon := float64(params.PriorityHorizon)
	elapsed := math.Max(float64(now-nb.since), horizon)
	h := (nb.rate + 2*nb.reqCharged/elapsed) * horizon
	if rel := float64(neg / negCeilingDivisor); rel > h {
		h = rel
	}
	return addSat(1, h)
}

// keyNeg returns the negative balance c's ordering keys are computed from: the
// value itself for a balance of one client, else the group's ceiling (set when
// missing, lowered when the value decayed far below it: a lower ceiling only
// re-keys the members earlier, so it is always safe to lower).
func (p *ClientPool) keyNeg(nb *negBalance, neg uint64, now mclock.AbsTime) uint64 {
	if !nb.shared() {
		return neg
	}
	h := p.negHeadroom(nb, neg, now)
	if nb.ceiling == 0 || nb.ceiling > addSat(neg, 2*float64(h)) {
		nb.ceiling = addSat(neg, float64(h))
	}
	if nb.ceiling < neg {
		return neg // past it: negGrew re-keys every member
	}
	return nb.ceiling
}

// negGrew is called after a shared balance grew: once it reached its ceiling,
// every member is re-keyed against a new one.
func (p *ClientPool) negGrew(nb *negBalance, now mclock.AbsTime) {
	if !nb.shared() || nb.ceiling == 0 || nb.ceiling >= math.MaxInt64 {
		return // a balance saturated at MaxInt64 cannot pass its ceiling
	}
	if p.negAt(nb, now).Value(p.negExp.at(now)) < nb.ceiling {
		return
	}
	p.refreshNeg(nb, now)
}

// refreshNeg sets a new ceiling for a shared balance and re-keys its members
// against it: the active ones in the active heap, the waiting ones in the
// inactive heaps.
func (p *ClientPool) refreshNeg(nb *negBalance, now mclock.AbsTime) {
	nb.ceiling = 0 // set anew by the first keyNeg below
	neg := p.negAt(nb, now).Value(p.negExp.at(now))
	p.keyNeg(nb, neg, now)
	p.negRefreshes++
	for _, s := range nb.clients {
		if s.disconnected || !s.registered {
			continue
		}
		p.refreshKey(s, now)
	}
	p.curveChanged = true
}

// negLog is the offset-independent log2 of a negative balance of value v at
// offset l, the order key of a waiting free client (see setInactiveKey).
func negLog(v uint64, l LogOffset) float64 {
	if v == 0 {
		return math.Inf(-1)
	}
	return math.Log2(float64(v)) + l.Float64()
}

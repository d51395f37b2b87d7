package clientpool

import (
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/vflux-net/vflux/params"
)

// This file holds the pool's common drift of keys (see doc.go, Keys that
// stay valid while time passes) and the pool-level activation timer.

// driftRebase is how large the common drift may grow before the stored keys
// are re-based to it: below it the drift is exact to a quarter of a unit in
// float64, and re-basing is O(n) once per driftRebase/rate nanoseconds.
const driftRebase = 1 << 50

// driftAt returns the common drift D(now): the number of priority units every
// stored key has fallen since the drift began, rounded up (a larger drift only
// lowers every effective key, so each stays a lower bound).
func (p *ClientPool) driftAt(now mclock.AbsTime) int64 {
	d := p.driftBase
	if now > p.driftSince && p.driftRate > 0 {
		f := math.Ceil(p.driftRate * float64(now-p.driftSince))
		if f >= math.MaxInt64/2 {
			return math.MaxInt64
		}
		return satAddI(d, int64(f))
	}
	return d
}

// setDriftRate changes the drift rate from now on. The rate is the priority
// fall rate (units per ns) of a free client at minCap with the default
// negative price factors, so those clients, the many, keep their keys for as
// long as they stay active. Active clients are re-keyed (their timers depend
// on the rate).
func (p *ClientPool) setDriftRate(now mclock.AbsTime) {
	rate := p.defNeg.timePrice(p.minCap, 0)
	if rate == p.driftRate {
		return
	}
	p.driftBase, p.driftSince, p.driftRate = p.driftAt(now), now, rate
	if p.stopped {
		return
	}
	for _, c := range p.clients {
		if c.active {
			p.rekey(c, now)
		}
	}
}

// rebaseDrift moves the drift back to 0, lowering every stored key by it
// (effective keys stay as they were, or lower where a key saturates), and
// restores the heaps' order (saturation can tie keys). Only with no plan walk
// under way: the walk holds heap indices.
func (p *ClientPool) rebaseDrift(now mclock.AbsTime) {
	d := p.driftAt(now)
	if d < driftRebase {
		return
	}
	for _, c := range p.active.items {
		c.key, c.slotKey = satSubInt(c.key, d), satSubInt(c.slotKey, d)
	}
	p.active.heapify()
	p.slots.heapify()
	p.driftBase, p.driftSince = 0, now
}

// effKey returns the lower bound of the priority at now that a stored key
// stands for.
func (p *ClientPool) effKey(stored int64, now mclock.AbsTime) int64 {
	return satSubInt(stored, p.driftAt(now))
}

// fallRates returns how fast c's priority at its capacity and at minCap can
// fall at most from the moment of b, by time alone (requests are charged as
// events and re-key the client): for a priority client its spending and decay
// at that moment (its balance is convex in time, so never faster later), else
// its negative price; a member of a shared balance is keyed against the
// group's ceiling, whose crossing its timer watches, so 0.
func (p *ClientPool) fallRates(c *client, b *balSnap) (atCap, atMin float64) {
	capacity, minCap := max(c.capacity, 1), max(p.minCap, 1)
	if b.pos > 0 {
		rate := c.posF.timePrice(c.capacity, 0)
		if b.posTau > 0 {
			pos := b.posExact
			if pos <= 0 {
				pos = float64(b.pos)
			}
			rate += pos / b.posTau
		}
		return rate / float64(capacity), rate / float64(minCap)
	}
	if c.neg.shared() {
		return 0, 0
	}
	r := c.negF.timePrice(c.capacity, 0)
	return r, r
}

// keyHeadroom is how far below the priority of the moment a key is set so
// that, falling with the drift, it stays a lower bound for params.PriorityHorizon
// at fall rate s: what s exceeds the drift rate by over the horizon, plus 3
// units for rounding (integer priorities, rounded balances).
func (p *ClientPool) keyHeadroom(s float64) float64 {
	return math.Max(0, s-p.driftRate)*float64(params.PriorityHorizon) + 3
}

// rekeyDue returns when an active client falling at rates s (at its
// capacity) and sMin (at minCap) must be re-keyed by time: after the horizon
// if it falls faster than the drift (its key is a lower bound that long),
// else never. A key of a client falling slower only grows loose, which costs
// refreshes, never a wrong decision, and the planner tightens the keys it
// reads (tightenKeys).
func (p *ClientPool) rekeyDue(s, sMin float64) time.Duration {
	if s > p.driftRate || sMin > p.driftRate {
		return params.PriorityHorizon
	}
	return time.Duration(math.MaxInt64)
}

// satSubInt returns a-b (b >= 0) saturating at MinInt64.
func satSubInt(a, b int64) int64 {
	if b > 0 && a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

// activationMinDelay is the shortest time between two timer-driven
// activation checks: without a connected bias, clients whose debts grow alike
// would otherwise take turns at every timer granularity.
const activationMinDelay = time.Second

// armActivation arms the pool's activation timer to fire after d (none if d
// is MaxInt64), keeping an armed one that is due no later: an early firing
// only runs tryActivate, which arms it again.
func (p *ClientPool) armActivation(d time.Duration) {
	if p.stopped || d == time.Duration(math.MaxInt64) {
		return
	}
	d = max(d, activationMinDelay)
	if p.activation.armed() && p.activation.due <= p.clock.Now().Add(d) {
		return
	}
	p.activation.arm(p.clock, d, p.onActivation)
}

// onActivation lets the waiting clients compete when the best of them may
// have come to out-rank an active one.
func (p *ClientPool) onActivation(gen uint64) {
	var acts callbacks
	p.mu.Lock()
	if p.activation.fired(gen) && !p.stopped {
		now := p.clock.Now()
		p.curveChanged = true
		p.tryActivate(now, &acts)
		p.finish(now, &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// activationDue returns when a waiting client (balances b), whose biased priority prio
// failed to out-rank the rank floor of a plan, may out-rank it: every active
// client's priority stays above floor minus the drift since (while its key
// holds; a client whose key holds shorter has its own timer, which runs
// tryActivate), and w's rises at most by the decay of its negative balance.
func (p *ClientPool) activationDue(b *balSnap, prio, floor int64) time.Duration {
	if floor == math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	rate := p.driftRate
	if b.pos == 0 {
		if tau := p.negExp.tauNs(); tau > 0 {
			rate += float64(b.neg) / tau
		}
	}
	if !(rate > 0) {
		return time.Duration(math.MaxInt64)
	}
	gap := float64(floor) - float64(prio)
	return durationOf(math.Max(gap, 0) / rate)
}

// satSubF returns a-ceil(f) (a >= -MaxInt64, f >= 0) saturating at -MaxInt64.
func satSubF(a int64, f float64) int64 {
	if f >= math.MaxInt64/2 {
		return -math.MaxInt64
	}
	h := int64(math.Ceil(f))
	if a < -math.MaxInt64+h {
		return -math.MaxInt64
	}
	return a - h
}

// satAddI returns a+b (b >= 0) saturating at MaxInt64.
func satAddI(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

package clientpool

import (
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/vflux-net/vflux/params"
)

// This file holds the state transitions of one client. Each is called with
// the pool lock held and records the peer callbacks and events it causes.

// rekey recomputes an active client's ordering keys, stored with the common
// drift (see doc.go, Keys that stay valid while time passes): lower bounds of
// its priority (at its capacity and at minCap) that fall with the drift, and
// re-arms its timer.
func (p *ClientPool) rekey(c *client, now mclock.AbsTime) {
	p.rekeys++
	p.updateNegRate(c, now) // first: the timer reads the group's rate
	b := c.snapAt(now)
	kb := b
	kb.neg = p.keyNeg(c.neg, b.neg, now) // a shared balance: its ceiling
	s, sMin := p.fallRates(c, &b)
	k := freeKeys
	if b.pos > 0 {
		k = paidKeys
	}
	kv := p.keyViewOf(k, now)
	c.paidKey = k == paidKeys
	c.key = kv.store(k, float64(kb.priority(c.capacity))-p.keyHeadroom(k, s))
	c.slotKey = kv.store(k, float64(kb.priority(p.minCap))-p.keyHeadroom(k, sMin))
	if p.active.contains(c) {
		p.active.fix(c)
		p.slots.fix(c)
	} else {
		p.active.add(c)
		p.slots.add(c)
	}
	p.armTimer(c, &b)
	p.updateSpend(c)
}

// activate gives an inactive client capacity cap.
func (p *ClientPool) activate(c *client, cap uint64, now mclock.AbsTime, acts *callbacks) {
	p.inactiveBest.remove(c)
	p.inactiveLow.remove(c)
	paused := c.allowTimer.armed()
	p.stopAllowance(c)
	c.decayTimer.stop() // the threshold timer watches the balance from now on
	c.allowPaused = paused
	c.active = true
	c.capacity = cap
	c.lastSettle = now
	p.activeCount++
	p.activeCap += cap
	p.capMoved(cap)
	c.ranOut = false
	p.rekey(c, now)
	acts.update(c, cap, false)
	acts.event(EventActivated, c, now, "")
}

// setCap changes an active client's capacity.
func (p *ClientPool) setCap(c *client, cap uint64, requested bool, now mclock.AbsTime, acts *callbacks) {
	if cap == c.capacity {
		return
	}
	exhausted := c.settle(now)
	if cap > c.capacity {
		p.capMoved(cap - c.capacity)
	} else {
		p.capMoved(c.capacity - cap)
	}
	p.activeCap = p.activeCap - c.capacity + cap
	c.capacity = cap
	p.rekey(c, now)
	acts.update(c, cap, requested)
	acts.event(EventCapacityChanged, c, now, "")
	if exhausted {
		p.lostPriority(c, now, acts)
	}
}

// removeActive takes an active client out of the active set and reports its
// capacity as 0.
func (p *ClientPool) removeActive(c *client, now mclock.AbsTime, acts *callbacks, report bool) {
	if c.settle(now) {
		c.ranOut = true // ran out since its activation, found only now
		acts.event(EventBalanceExhausted, c, now, "")
	}
	p.active.remove(c)
	p.slots.remove(c)
	p.activeCount--
	p.activeCap -= c.capacity
	p.capMoved(c.capacity)
	c.capacity = 0
	c.active = false
	p.updateSpend(c)
	p.updateNegRate(c, now)
	c.timer.stop()
	p.unwritten = append(p.unwritten, c) // settled above: persistAll writes it next
	if report {
		acts.update(c, 0, false)
	}
}

// deactivate moves an active client to the inactive set, where it waits (a
// client without priority for its allowance). reason is ReasonEvicted or
// ReasonLimitsLowered; an eviction of a client whose balance ran out since its
// activation is reported as ReasonBalanceRanOut.
//
// Fix: an activation the peer never saw (it was told no capacity since, say
// because the same call deactivated it again) does not restart the allowance:
// the allowance that was running goes on from when it started, so a free
// client cannot stay inactive for longer than its allowance.
func (p *ClientPool) deactivate(c *client, now mclock.AbsTime, acts *callbacks, reason Reason) {
	if c.told != 0 {
		c.allowPaused = false // the peer saw it active: a fresh allowance
	}
	p.removeActive(c, now, acts, true)
	if reason == ReasonEvicted && c.ranOut && !c.hasPriority() {
		reason = ReasonBalanceRanOut
	}
	acts.event(EventDeactivated, c, now, reason)
	c.setInactiveKey()
	p.inactiveBest.add(c)
	p.inactiveLow.add(c)
	p.startAllowance(c, acts)
}

// leaveSets takes a client out of the active or inactive set and stops its
// timers. report says whether a capacity drop is reported to the peer; an
// active client is deactivated for reason, the reason it leaves.
func (p *ClientPool) leaveSets(c *client, now mclock.AbsTime, acts *callbacks, report bool, reason Reason) {
	if c.active {
		p.removeActive(c, now, acts, report)
		acts.event(EventDeactivated, c, now, reason)
	}
	p.inactiveBest.remove(c)
	p.inactiveLow.remove(c)
	p.stopAllowance(c)
	c.decayTimer.stop()
	c.timer.stop()
}

// disconnect tells a client to disconnect for reason: it leaves the sets at
// once and is never reactivated; its Unregister only settles and persists its
// balances.
func (p *ClientPool) disconnect(c *client, now mclock.AbsTime, acts *callbacks, reason Reason) {
	if c.disconnected {
		return
	}
	p.leaveSets(c, now, acts, true, reason)
	c.disconnected = true
	acts.disconnect(c)
	acts.event(EventDisconnected, c, now, reason)
}

// startAllowance starts the inactive allowance of a client without priority;
// an allowance of 0 disconnects it at once. Priority clients wait as long as
// they have priority: their decay timer (armDecay) starts the allowance when
// the positive balance decays away. An allowance paused by an activation the
// peer never saw resumes where it was (see deactivate): only what is left of
// it is armed.
func (p *ClientPool) startAllowance(c *client, acts *callbacks) {
	if c.active || c.disconnected || !c.registered {
		return
	}
	if c.hasPriority() {
		p.stopAllowance(c)
		p.armDecay(c)
		return
	}
	c.decayTimer.stop()
	if c.allowTimer.armed() {
		return // already counting
	}
	now := p.clock.Now()
	if !c.allowPaused {
		c.allowSince = now
	}
	c.allowPaused = false
	left := c.allowance - time.Duration(now-c.allowSince)
	if left <= 0 || p.stopped { // after Stop no timer counts it: it ends now
		p.disconnect(c, now, acts, ReasonAllowanceEnded)
		return
	}
	c.allowTimer.arm(p.clock, left, func(gen uint64) { p.onAllowance(c, gen) })
}

// stopAllowance stops the allowance timer; the allowance ends (a paused one
// is kept by activate only).
func (p *ClientPool) stopAllowance(c *client) {
	c.allowTimer.stop()
	c.allowPaused = false
}

// armDecay (re)arms the decay timer of an inactive priority client: it fires
// when the positive balance reads 0 (SPEC 2.4: an inactive client whose
// balance runs out starts its inactive allowance then). Only active clients
// have threshold timers; without this one the loss would wait for the next
// persistence pass, up to params.BalancePersistInterval late. An inactive
// client spends nothing, so only decay takes its balance away.
func (p *ClientPool) armDecay(c *client) {
	c.decayTimer.stop()
	tau := p.posExp.tauNs()
	if tau <= 0 || p.stopped {
		return // no decay: it keeps its priority while it waits
	}
	now := p.clock.Now()
	d := durationOf(untilBelow(exactValue(c.pos, p.posExp.at(now)), posGoneBelow, 0, tau))
	if d == time.Duration(math.MaxInt64) {
		return
	}
	if d < params.MinTimerDelay {
		d = params.MinTimerDelay
	}
	c.decayTimer.arm(p.clock, d, func(gen uint64) { p.onDecay(c, gen) })
}

// onDecay handles an inactive priority client whose positive balance decayed
// away: the loss is settled and its allowance starts (lostPriority). A firing
// a little early (the balance still reads 1) re-arms the timer.
func (p *ClientPool) onDecay(c *client, gen uint64) {
	var acts callbacks
	p.mu.Lock()
	if c.decayTimer.fired(gen) && !p.stopped && c.registered && !c.disconnected && !c.active {
		now := p.clock.Now()
		if c.settle(now) {
			p.lostPriority(c, now, &acts)
		} else {
			p.startAllowance(c, &acts)
		}
		p.finish(now, &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// onAllowance disconnects a client whose inactive allowance ran out.
func (p *ClientPool) onAllowance(c *client, gen uint64) {
	var acts callbacks
	p.mu.Lock()
	if c.allowTimer.fired(gen) && !p.stopped && c.registered && !c.disconnected && !c.active && !c.hasPriority() {
		now := p.clock.Now()
		p.disconnect(c, now, &acts, ReasonAllowanceEnded)
		p.finish(now, &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// onTimer handles an active client's threshold timer (SPEC 2.4): it settles
// the balance, handles a lost priority, re-orders the client and lets waiting
// clients compete with it.
func (p *ClientPool) onTimer(c *client, gen uint64) {
	var acts callbacks
	p.mu.Lock()
	if c.timer.fired(gen) && !p.stopped && c.active {
		now := p.clock.Now()
		lost := c.settle(now)
		if lost {
			p.lostPriority(c, now, &acts)
		}
		if c.active {
			p.rekey(c, now)
		}
		p.curveChanged = true
		// The heap's order is lazy: whether c is the lowest-ranked active
		// client at the moment is known only to the planner, so waiting
		// clients compete at every threshold.
		p.tryActivate(now, &acts)
		p.finish(now, &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// lostPriority handles a positive balance that ran out: an active client
// above minCap is cut to minCap, an inactive one starts its allowance.
func (p *ClientPool) lostPriority(c *client, now mclock.AbsTime, acts *callbacks) {
	acts.event(EventBalanceExhausted, c, now, "")
	c.ranOut = true
	if c.disconnected || !c.registered {
		return
	}
	if c.active {
		if c.capacity > p.minCap {
			p.setCap(c, p.minCap, false, now, acts)
		}
		return
	}
	c.setInactiveKey()
	p.inactiveBest.fix(c)
	p.inactiveLow.fix(c)
	p.startAllowance(c, acts)
}

// priorityChanged re-orders a client after its balance or prices changed and
// lets waiting clients compete.
func (p *ClientPool) priorityChanged(c *client, now mclock.AbsTime, acts *callbacks) {
	if c.disconnected || !c.registered {
		return
	}
	p.curveChanged = true
	p.refreshKey(c, now)
	if !c.active {
		p.startAllowance(c, acts) // or, with priority, re-arm the decay timer
	}
	p.tryActivate(now, acts)
	p.finish(now, acts)
}

// capMoved records capacity moved for the capacity curve's rebuild rule.
func (p *ClientPool) capMoved(d uint64) {
	if p.curveMoved += d; p.curveMoved < d {
		p.curveMoved = math.MaxUint64 // saturated: the curve is stale anyway
	}
	p.curveChanged = true
}

// refreshKey re-keys c where it is ranked: in the active heaps, or in the
// inactive heaps of waiting clients.
func (p *ClientPool) refreshKey(c *client, now mclock.AbsTime) {
	if c.active {
		p.rekey(c, now)
		return
	}
	c.setInactiveKey()
	p.inactiveBest.fix(c)
	p.inactiveLow.fix(c)
}

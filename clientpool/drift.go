package clientpool

import (
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/vflux-net/vflux/params"
)

// This file holds the pool's common drift of keys (see doc.go, Keys that
// stay valid while time passes) and the pool-level activation timer.

// Key kinds: a free client's keys are in the base units of the negative
// balance, a priority client's in those of the positive balance (see doc.go,
// Keys that stay valid while time passes). Every free client ranks below
// every priority client, so the heaps order by kind first.
const (
	freeKeys = 0
	paidKeys = 1
)

// driftRebase is how large a drift may grow before the stored keys of its
// kind are re-based to it: below it the drift is exact to a quarter of a unit
// in float64. Re-basing is O(n), once per driftRebase base units of drift.
const driftRebase = 1 << 50

// maxRefShift is how far the expiration offset may move from a drift's
// reference offset before the keys are re-based: base units stay within a
// factor 2^4 of value units.
const maxRefShift = 4

// keyEpsilon is the relative margin every stored and effective key is
// lowered by, for the rounding of float64 arithmetic.
const keyEpsilon = 1.0 / (1 << 45)

// keySlack is added to every drift rate, in priority units per ns (1 per
// second): balances are rounded to whole tokens at each settle, and the slack
// keeps a key a lower bound through an hour of those roundings.
const keySlack = 1e-9

// keyDrift is the common drift of one kind of keys. A stored key is a lower
// bound of the client's priority in base units (the value times 2^(L-ref),
// which expiration does not change) plus the drift D when it was set; the
// bound it stands for at t is stored - D(t), in value units times 2^(ref-L(t)).
// D grows by rate base units per ns times 2^(L(t)-ref): as fast as the debt or
// the pos/cap of a client at the kind's typical price falls, in base units.
type keyDrift struct {
	exp   *expClock      // the expiration clock of the kind's balance
	rate  float64        // priority units per ns (value units), with keySlack
	d     float64        // D at since, in base units
	since mclock.AbsTime // when rate or the time constant last changed, or the keys were re-based
	ref   LogOffset      // the reference offset of base units
}

// scale returns 2^(L(t)-ref), base units per value unit at t.
func (k *keyDrift) scale(t mclock.AbsTime) float64 {
	return math.Exp2((k.exp.at(t) - k.ref).Float64())
}

// at returns D(t): d plus the integral of rate*2^(L-ref) from since to t, in
// closed form (L grows linearly, so 2^L exponentially with the time constant).
func (k *keyDrift) at(t mclock.AbsTime) float64 {
	if t <= k.since || k.rate == 0 {
		return k.d
	}
	dt := float64(t - k.since)
	if tau := k.exp.tauNs(); tau > 0 {
		return k.d + k.rate*k.scale(k.since)*tau*math.Expm1(dt/tau)
	}
	return k.d + k.rate*k.scale(k.since)*dt
}

// settle starts the drift anew at now with its value there, so that a new
// rate or time constant applies from now on.
func (k *keyDrift) settle(now mclock.AbsTime) {
	k.d, k.since = k.at(now), now
}

// horizon returns how many base units per unit of rate the drift grows by
// over params.PriorityHorizon from now, in value units at now.
func (k *keyDrift) horizon() float64 {
	h := float64(params.PriorityHorizon)
	if tau := k.exp.tauNs(); tau > 0 {
		return tau * math.Expm1(h/tau)
	}
	return h
}

// keyView is the drifts of both kinds read at one moment, to convert stored
// keys into the bounds they stand for without reading the clocks per key.
type keyView struct {
	d, scale [2]float64
}

// keyView reads both drifts at now.
func (p *ClientPool) keyView(now mclock.AbsTime) keyView {
	var v keyView
	for k := range p.drifts {
		v.d[k], v.scale[k] = p.drifts[k].at(now), p.drifts[k].scale(now)
	}
	return v
}

// keyViewOf is keyView for kind k only (the other kind is left unset).
func (p *ClientPool) keyViewOf(k int, now mclock.AbsTime) keyView {
	var v keyView
	v.d[k], v.scale[k] = p.drifts[k].at(now), p.drifts[k].scale(now)
	return v
}

// looseKey reports whether a key that stands for key is looser than rounding
// (the headroom and the float64 margins) below the priority prio: one the
// planner should tighten.
func looseKey(key, prio int64) bool {
	return float64(prio)-float64(key) > 64+math.Abs(float64(prio))/(1<<40)
}

// eff returns the lower bound of the priority, in priority units, that the
// stored key of kind k stands for: a free client's is at most 0 (its priority
// is -neg), a priority client's at least 0 (its priority is at least 1), so
// the kinds keep their order whatever the drifts.
func (v *keyView) eff(k int, stored float64) int64 {
	x := v.bound(k, stored) - 1
	if k == freeKeys {
		x = math.Min(x, 0)
	} else {
		x = math.Max(x, 0)
	}
	switch {
	case x <= math.MinInt64:
		return math.MinInt64
	case x >= math.MaxInt64:
		return math.MaxInt64
	}
	return int64(math.Floor(x))
}

// bound returns the lower bound, in priority units at the view's moment, that
// the stored key of kind k stands for, lowered by the float64 margin.
func (v *keyView) bound(k int, stored float64) float64 {
	x := (stored - v.d[k]) / v.scale[k]
	return x - (math.Abs(stored)+math.Abs(v.d[k]))/v.scale[k]*keyEpsilon
}

// store returns the stored key of kind k for the lower bound bound (priority
// units) at now.
func (v *keyView) store(k int, bound float64) float64 {
	x := bound*v.scale[k] + v.d[k]
	return x - (math.Abs(bound*v.scale[k])+math.Abs(v.d[k]))*keyEpsilon
}

// keyKind returns the kind of c's keys: the kind of its balances when it was
// last re-keyed.
func keyKind(c *client) int {
	if c.paidKey {
		return paidKeys
	}
	return freeKeys
}

// effKey returns the lower bound of c's priority at now that its stored key
// (c.key or c.slotKey) stands for.
func (p *ClientPool) effKey(c *client, stored float64, now mclock.AbsTime) int64 {
	k := keyKind(c)
	v := p.keyViewOf(k, now)
	return v.eff(k, stored)
}

// setDriftRates sets the drift rates from the default prices: the fall rate
// of a free client's priority at minCap with the default negative factors,
// and of a priority client's pos/cap at minCap with the default positive
// ones, each plus keySlack. Those clients, the many, keep their keys for as
// long as they stay active. Active clients are re-keyed (their timers depend
// on the rates).
func (p *ClientPool) setDriftRates(now mclock.AbsTime) {
	minCap := max(p.minCap, 1)
	rates := [2]float64{
		freeKeys: p.defNeg.timePrice(p.minCap, 0) + keySlack,
		paidKeys: p.defPos.timePrice(p.minCap, 0)/float64(minCap) + keySlack,
	}
	if rates[freeKeys] == p.drifts[freeKeys].rate && rates[paidKeys] == p.drifts[paidKeys].rate {
		return
	}
	p.settleDrifts(now)
	for k := range p.drifts {
		p.drifts[k].rate = rates[k]
	}
	if p.stopped {
		return
	}
	for _, c := range p.clients {
		if c.active {
			p.rekey(c, now)
		}
	}
}

// rebaseKeys re-bases a drift whose value reached driftRebase, or whose
// reference offset is maxRefShift from the offset of the moment: every stored
// key of its kind becomes the bound it stands for at now, in base units of the
// offset of now, and the drift starts again from 0 (effective keys stay as
// they were, lowered by the rounding margin). A drift that overflowed float64
// (hundreds of time constants since the last check, which only a simulated
// clock run in one long step gives) cannot convert its keys: its clients are
// re-keyed from their balances instead. Only with no plan walk under way: the
// walk holds heap indices.
func (p *ClientPool) rebaseKeys(now mclock.AbsTime) {
	var due, lost [2]bool
	v := p.keyView(now)
	for k := range p.drifts {
		dr := &p.drifts[k]
		shift := (dr.exp.at(now) - dr.ref).Float64()
		due[k] = !(math.Abs(v.d[k]) < driftRebase) || math.Abs(shift) > maxRefShift
		lost[k] = math.IsInf(v.d[k], 0) || math.IsNaN(v.d[k]) || !(v.scale[k] > 0) || math.IsInf(v.scale[k], 0)
	}
	if !due[freeKeys] && !due[paidKeys] {
		return
	}
	var rekey []*client
	for _, c := range p.active.items {
		switch k := keyKind(c); {
		case lost[k] || math.IsNaN(c.key) || math.IsNaN(c.slotKey):
			rekey = append(rekey, c)
		case due[k]:
			c.key, c.slotKey = v.bound(k, c.key), v.bound(k, c.slotKey)
		}
	}
	for k := range p.drifts {
		if due[k] {
			dr := &p.drifts[k]
			dr.d, dr.since, dr.ref = 0, now, dr.exp.at(now)
		}
	}
	for _, c := range rekey {
		p.rekey(c, now)
	}
	p.active.heapify()
	p.slots.heapify()
}

// settleDrifts starts both drifts anew at now, before a rate or a time
// constant changes.
func (p *ClientPool) settleDrifts(now mclock.AbsTime) {
	for k := range p.drifts {
		p.drifts[k].settle(now)
	}
}

// fallRates returns how fast c's priority at its capacity and at minCap can
// fall at most, in base units (priority units per ns at the moment of b), by
// time alone (requests are charged as events and re-key the client). Decay
// does not show in base units: a priority client falls by its spending, a
// free one by its negative price. A member of a shared balance is keyed
// against the group's ceiling, whose crossing its timer watches; a ceiling
// constant in value units falls in base units by ceiling/tau.
func (p *ClientPool) fallRates(c *client, b *balSnap) (atCap, atMin float64) {
	capacity, minCap := max(c.capacity, 1), max(p.minCap, 1)
	if b.pos > 0 {
		rate := c.posF.timePrice(c.capacity, 0)
		return rate / float64(capacity), rate / float64(minCap)
	}
	if c.neg.shared() {
		if tau := p.negExp.tauNs(); tau > 0 {
			r := float64(c.neg.ceiling) / tau
			return r, r
		}
		return 0, 0
	}
	r := c.negF.timePrice(c.capacity, 0)
	return r, r
}

// keyHeadroom is how far below the priority of the moment a key of kind k is
// set so that, falling with the drift, it stays a lower bound for
// params.PriorityHorizon at fall rate s: what s exceeds the drift rate by over
// the horizon, plus 3 units for rounding (integer priorities, rounded
// balances).
func (p *ClientPool) keyHeadroom(k int, s float64) float64 {
	dr := &p.drifts[k]
	return math.Max(0, s-dr.rate)*dr.horizon() + 3
}

// rekeyDue returns when an active client whose keys are of kind k, falling
// at rates s (at its capacity) and sMin (at minCap), must be re-keyed by
// time: after the horizon if it falls faster than the drift (its key is a
// lower bound that long), else never. A key of a client falling slower only
// grows loose, which costs refreshes, never a wrong decision, and the planner
// tightens the keys it reads (tightenKeys).
func (p *ClientPool) rekeyDue(k int, s, sMin float64) time.Duration {
	if r := p.drifts[k].rate; s > r || sMin > r {
		return params.PriorityHorizon
	}
	return time.Duration(math.MaxInt64)
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

// activationDue returns when a waiting client whose biased priority prio
// failed to out-rank the rank floor of a plan may out-rank it. floor is a
// lower bound of every active client's priority at the plan; it falls with
// the drift of its kind (a priority client's floor is above 0, a free
// client's at most 0), and a client whose key holds for less has its own
// timer, which runs tryActivate. The waiting client's priority in base units
// does not fall with the drift (a free client's debt only decays while it
// waits, which base units do not show), so it cannot out-rank the floor
// before the drift has grown by the gap: gap = rate*tau*(e^(t/tau)-1) in
// value units, or rate*t without expiration.
func (p *ClientPool) activationDue(prio, floor int64) time.Duration {
	if floor == math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	k := freeKeys
	if floor > 0 {
		if prio <= 0 {
			return time.Duration(math.MaxInt64) // a free client never out-ranks a priority client by time
		}
		k = paidKeys
	}
	dr := &p.drifts[k]
	gap := math.Max(0, float64(floor)-float64(prio))
	if tau := dr.exp.tauNs(); tau > 0 {
		return durationOf(tau * math.Log1p(gap/(dr.rate*tau)))
	}
	return durationOf(gap / dr.rate)
}

package clientpool

import (
	"math"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/vflux-net/vflux/params"
)

// curveStep is one step of the capacity curve: the pool state after one
// simulated enforcement cut (step 0 is the state before any cut).
type curveStep struct {
	count    uint64 // active count after the step, counting the asking client's slot
	capSum   uint64 // active capacity after the step, without the asking client
	best1    int64  // highest priority cut so far
	best2    int64  // highest priority cut so far by a client other than best1's
	best1Idx int32  // snapshot index of best1's client (-1 = none)
	client   int32  // snapshot index of the client cut in this step (-1 = none)
	capAfter uint64 // that client's capacity after the step
	next     int32  // the same client's next step (-1 = none)
	// raiseBest (newcomer simulation) is the highest priority cut in the
	// steps after the newcomer's admission (sim.kmin) up to this one.
	raiseBest int64
}

// capacityCurve is a cached simulation of evictions in priority order (SPEC
// 3.3): how much capacity frees up and which priority a newcomer must beat for
// it. Answering a capacity query is a binary search over it.
//
// There are two simulations of the same snapshot. A newcomer needs a slot of
// its own, so its simulation starts one over the active count; an active asker
// already holds its slot, so its simulation starts at the active count (Fix:
// one simulation for both removed a client where SetCapacity only cuts it, and
// over-answered a connected asker). They differ only when the pool is full by
// count; otherwise both are the same steps.
type capacityCurve struct {
	gen       uint64 // snapshot generation; clients with curveGen == gen have curveIdx
	built     mclock.AbsTime
	minCap    uint64
	maxCount  uint64
	maxCap    uint64
	bias      time.Duration // the connected bias, with which deactivated clients come back
	newcomer  curveSim      // for an asker that is not active
	connected curveSim      // for an active asker (in the snapshot)
	caps      []uint64      // capacity of each snapshot client at the snapshot
}

// curveSim is one enforcement simulation over the curve's snapshot.
type curveSim struct {
	slot  uint64 // 1 if the simulation counts a slot for the asker on top of the snapshot
	steps []curveStep
	first []int32 // first step of each snapshot client (-1 = none)
	// Newcomer simulation only: kmin is the first step that frees a slot and
	// minCap (len(steps) if none), what Register's activation does; backEst
	// is the highest biased estimate at minCap of a client deactivated up to
	// it, which waits and comes back unless the newcomer keeps a priority of
	// at least that (math.MinInt64 if none).
	kmin    int
	backEst int64
}

// curveSnapshot is what the curve is built from, taken under the pool lock.
type curveSnapshot struct {
	curve   *capacityCurve
	entries []planEntry // keys, exact priorities and balances; hidx is the snapshot index
}

// snapshotCurve copies the active clients' capacities and balances (pool lock
// held); the caller builds the curve from it without the lock.
func (p *ClientPool) snapshotCurve(now mclock.AbsTime) *curveSnapshot {
	p.snapGen++
	cv := &capacityCurve{gen: p.snapGen, built: now, minCap: p.minCap, maxCount: p.maxCount, maxCap: p.maxCap, bias: p.bias}
	n := p.active.Len()
	s := &curveSnapshot{curve: cv, entries: make([]planEntry, n)}
	cv.caps = make([]uint64, n)
	kv := p.keyView(now)
	for i, c := range p.active.items {
		b := c.snapAt(now)
		c.curveGen, c.curveIdx = cv.gen, int32(i)
		s.entries[i] = planEntry{hidx: i, key: kv.eff(keyKind(c), c.key), seq: c.seq, hasPrio: true, prio: b.priority(c.capacity), cap: c.capacity, b: b}
		cv.caps[i] = c.capacity
	}
	p.curveMoved, p.curveChanged = 0, false
	return s
}

// build runs the enforcement simulation of plan over the whole snapshot: once
// with a slot kept for a newcomer and, when the pool is full by count, once
// more for an active asker (see capacityCurve).
func (s *curveSnapshot) build() *capacityCurve {
	cv := s.curve
	n := uint64(len(s.entries))
	var again []planEntry
	if n+1 > cv.maxCount {
		again = append([]planEntry(nil), s.entries...)
	}
	cv.newcomer = cv.simulate(s.entries, 1)
	if again != nil {
		cv.connected = cv.simulate(again, 0)
	} else {
		cv.connected = cv.newcomer // the count never binds: the same steps
	}
	return cv
}

// simulate runs the enforcement simulation of plan over entries (reordered in
// place), starting at the snapshot's count plus slot.
func (cv *capacityCurve) simulate(entries []planEntry, slot uint64) curveSim {
	sim := curveSim{slot: slot, first: make([]int32, len(entries)), kmin: -1, backEst: math.MinInt64}
	for i := range sim.first {
		sim.first[i] = -1
	}
	count := uint64(len(entries)) + slot
	var capSum uint64
	for _, c := range cv.caps {
		capSum += c
	}
	sim.steps = make([]curveStep, 1, len(entries)+1)
	sim.steps[0] = curveStep{count: count, capSum: capSum, best1: math.MinInt64, best2: math.MinInt64, best1Idx: -1, client: -1, next: -1, raiseBest: math.MinInt64}
	admitted := func(count, capSum uint64) bool {
		return count <= cv.maxCount && capSum < cv.maxCap && cv.maxCap-capSum >= cv.minCap
	}
	if admitted(count, capSum) {
		sim.kmin = 0
	}
	en := enforcement{minCap: cv.minCap, maxCount: cv.maxCount, count: count, capSum: capSum, capLimit: cv.maxCap}
	last := make([]int32, len(entries))
	prev := sim.steps[0]
	// take records one step: entry e, taken with priority cutPrio.
	take := func(e planEntry, cutPrio int64) {
		idx := int32(e.hidx)
		st := curveStep{client: idx, next: -1, best1: prev.best1, best2: prev.best2, best1Idx: prev.best1Idx, raiseBest: prev.raiseBest}
		st.capAfter = en.step(e)
		if st.capAfter == 0 && sim.kmin < 0 { // deactivated by the newcomer's admission
			sim.backEst = max(sim.backEst, e.b.estimate(cv.minCap, 0, 0, cv.bias))
		}
		st.count, st.capSum = en.count, en.capSum
		if sim.kmin >= 0 && cutPrio > st.raiseBest {
			st.raiseBest = cutPrio
		}
		switch {
		case idx == st.best1Idx:
			if cutPrio > st.best1 {
				st.best1 = cutPrio
			}
		case cutPrio > st.best1:
			st.best2, st.best1, st.best1Idx = st.best1, cutPrio, idx
		case cutPrio > st.best2:
			st.best2 = cutPrio
		}
		k := int32(len(sim.steps))
		if sim.first[idx] < 0 {
			sim.first[idx] = k
		} else {
			sim.steps[last[idx]].next = k
		}
		last[idx] = k
		sim.steps = append(sim.steps, st)
		prev = st
		if sim.kmin < 0 && admitted(en.count, en.capSum) {
			sim.kmin = int(k)
		}
	}
	// Over the count (a newcomer to a full pool): the lowest priorities at
	// minCap give up their slots, as in plan.
	for en.count > en.maxCount && len(entries) > 0 {
		low := 0
		for i := range entries {
			if slotBefore(&entries[i], &entries[low], cv.minCap) {
				low = i
			}
		}
		e := entries[low]
		entries[low] = entries[len(entries)-1]
		entries = entries[:len(entries)-1]
		take(e, e.b.priority(cv.minCap))
	}
	// Every entry is fresh (exact priorities at the snapshot): the frontier
	// is in priority order from the start.
	en.fr = newPlanHeap(entries)
	en.fr.heapify()
	for en.fr.Len() > 0 {
		e := en.fr.pop()
		take(e, e.prio)
	}
	if sim.kmin < 0 {
		sim.kmin = len(sim.steps)
	}
	return sim
}

// slotBefore orders snapshot entries by their priority at minCap, lowest
// first, ties by registration order: the order in which a pool over its count
// takes slots back.
func slotBefore(a, b *planEntry, minCap uint64) bool {
	if pa, pb := a.b.priority(minCap), b.b.priority(minCap); pa != pb {
		return pa < pb
	}
	return a.seq < b.seq
}

// curveView reads the curve for one asker: xIdx is its own snapshot index (-1
// if it is not in the snapshot); its allocation counts as free and its own
// cuts are ignored. sim is the simulation for that kind of asker.
type curveView struct {
	cv   *capacityCurve
	sim  *curveSim
	xIdx int32
}

// state returns the active count after step k with the asker holding a slot,
// and the active capacity after step k without the asker.
func (v curveView) state(k int) (count, capSum uint64) {
	st := &v.sim.steps[k]
	count, capSum = st.count, st.capSum
	if v.xIdx < 0 {
		return count, capSum
	}
	xCap, removed := v.cv.caps[v.xIdx], false
	for j := v.sim.first[v.xIdx]; j >= 0 && int(j) <= k; j = v.sim.steps[j].next {
		xCap = v.sim.steps[j].capAfter
		removed = xCap == 0
	}
	// the others, plus the one slot the asker holds
	count -= v.sim.slot
	if !removed {
		count--
	}
	return count + 1, capSum - xCap
}

// free returns the capacity free after step k (0 while the count is over).
func (v curveView) free(k int) uint64 {
	count, capSum := v.state(k)
	if count > v.cv.maxCount || capSum >= v.cv.maxCap {
		return 0
	}
	return v.cv.maxCap - capSum
}

// need returns the priority the asker must exceed to get what step k frees:
// the highest priority cut up to step k, by a client other than the asker.
func (v curveView) need(k int) int64 {
	st := &v.sim.steps[k]
	if st.best1Idx == v.xIdx && v.xIdx >= 0 {
		return st.best2
	}
	return st.best1
}

// maxCapacity answers one capacity query amount: the largest capacity the
// client with balance b could hold after adding addTokens, or 0. Free capacity
// after step k and the priority needed for it both grow with k, so the answer
// is in the last step whose smallest new capacity the client can afford:
// found by binary search over the steps, then over capacities within it.
//
// rival is the biased estimate at minCap of the waiting client activation
// tries first: the answer is one at which the asker keeps a priority of at
// least that, as SetCapacity grants it. A newcomer (Fix) is answered the way
// it gets capacity, Register then SetCapacity: Register's activation beats the
// steps up to kmin at minCap, the raise beats only the later ones at the
// answered capacity, and the clients the admission deactivated wait and come
// back unless the asker out-ranks them (backEst) there.
func (cv *capacityCurve) maxCapacity(b balSnap, addTokens int64, bias time.Duration, xIdx int32, rival int64) uint64 {
	if cv.maxCount == 0 || cv.minCap > cv.maxCap {
		return 0
	}
	v := curveView{cv: cv, sim: &cv.newcomer, xIdx: xIdx}
	if xIdx >= 0 {
		v.sim = &cv.connected
	}
	prio := func(capacity uint64) int64 { return b.estimate(capacity, addTokens, 0, bias) }
	pos := addSat(b.pos, float64(addTokens))
	n := len(v.sim.steps)
	var kmin int
	need := v.need
	if xIdx < 0 {
		kmin = v.sim.kmin
		rival = max(rival, v.sim.backEst)
		need = func(k int) int64 { return v.sim.steps[k].raiseBest } // k >= kmin
	} else {
		kmin = sort.Search(n, func(k int) bool { return v.free(k) >= cv.minCap })
	}
	if kmin == n || prio(cv.minCap) <= v.need(kmin) {
		return 0
	}
	exact := b
	exact.pos = pos
	if xIdx < 0 && exact.priority(cv.minCap) < rival {
		return 0 // admitted, it would be evicted again at once
	}
	if pos == 0 {
		return cv.minCap // free clients get at most minCap
	}
	// The most it holds while keeping priority pos/capacity >= rival.
	limit := uint64(math.MaxUint64)
	if rival > 1 {
		limit = pos / uint64(rival)
		if xIdx >= 0 {
			limit = max(limit, cv.caps[xIdx]) // it keeps what it has
		}
	}
	ans := cv.curveAnswer(v, prio, need, kmin)
	return min(ans, limit)
}

// curveAnswer is the largest capacity the asker can afford by the curve's
// cuts alone: need(k) is the priority it must exceed for what step k frees,
// and it can afford step kmin's.
func (cv *capacityCurve) curveAnswer(v curveView, prio func(uint64) int64, need func(int) int64, kmin int) uint64 {
	n := len(v.sim.steps)
	// the last step k whose first new capacity is affordable
	k := kmin + sort.Search(n-kmin-1, func(i int) bool {
		k := kmin + 1 + i
		f := v.free(k - 1)
		// with all of MaxUint64 free already, no later step frees more
		return f == math.MaxUint64 || prio(f+1) <= need(k)
	})
	lo, hi := cv.minCap, v.free(k)
	if k > kmin {
		lo = v.free(k-1) + 1
	}
	if lo > hi {
		return hi
	}
	needK := need(k)
	for lo < hi { // lo is affordable
		mid := lo + (hi-lo+1)/2
		if prio(mid) > needK {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// curveValid reports whether the cached curve may answer now (SPEC 3.3 rule).
func (p *ClientPool) curveValid(now mclock.AbsTime) bool {
	cv := p.curve
	if cv == nil {
		return false
	}
	if p.curveMoved > 0 && p.curveMoved >= p.maxCap/100*params.CapacityCurveRebuildPercent { // no product can wrap
		return false
	}
	if p.curveChanged && now-cv.built >= mclock.AbsTime(params.CapacityCurveMaxAge) {
		return false
	}
	return true
}

// curveIndex returns c's index in the curve's snapshot, or -1.
func curveIndex(cv *capacityCurve, c *client) int32 {
	if c != nil && c.active && c.curveGen == cv.gen {
		return c.curveIdx
	}
	return -1
}

// curveEstimate answers "what capacity can c hold" from the capacity curve,
// as SetCapacity's first estimate of a partial grant (pool lock held). A stale
// curve is rebuilt here, under the lock: partial grants are rare and the new
// curve serves the following queries too.
func (p *ClientPool) curveEstimate(c *client, now mclock.AbsTime, bias time.Duration, rival int64) uint64 {
	if !p.curveValid(now) {
		p.curve = p.snapshotCurve(now).build()
	}
	return p.curve.maxCapacity(c.snapAt(now), 0, bias, curveIndex(p.curve, c), rival)
}

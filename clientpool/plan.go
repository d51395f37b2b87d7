package clientpool

import (
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// planEntry is one candidate of the enforcement planner or the capacity
// curve: an active client, its capacity and, once refreshed (hasPrio), its
// exact priority at the moment of the decision.
type planEntry struct {
	c       *client // nil in a curve snapshot
	hidx    int     // planner: active heap index whose children are not yet visited (-1: none); curve: snapshot index
	key     int64   // the walked heap's key (key or slotKey): a lower bound of prio
	seq     uint64
	hasPrio bool // prio and b are computed
	prio    int64
	cap     uint64
	b       balSnap
}

// rank is what an entry is ordered by: its exact priority once refreshed,
// else its key, a lower bound of it.
func (e *planEntry) rank() int64 {
	if e.hasPrio {
		return e.prio
	}
	return e.key
}

// planBefore orders the enforcement frontier, lowest first. An entry that is
// not refreshed is ordered by its key, a lower bound of its priority, and
// comes before a refreshed one of the same rank; so a refreshed entry at the
// top has the lowest priority of all (every other priority is at least its
// key, and every key is at least the top's priority), and ties of priority go
// to registration order, the longest registered first. This is the lazy
// queue: keys order the heap, and the lowest is refreshed and re-sifted until
// the top is fresh.
func planBefore(a, b *planEntry) bool {
	if ra, rb := a.rank(), b.rank(); ra != rb {
		return ra < rb
	}
	if a.hasPrio != b.hasPrio {
		return !a.hasPrio
	}
	return a.seq < b.seq
}

// planHeap is the enforcement frontier.
type planHeap = indexedHeap[planEntry]

func newPlanHeap(entries []planEntry) planHeap {
	return planHeap{items: entries, less: planBefore}
}

// quarterCut is the capacity after one enforcement cut: a quarter less (at
// least 1), not below floor.
func quarterCut(cap, floor uint64) uint64 {
	d := cap / 4
	if d < 1 {
		d = 1
	}
	if cap-d < floor || d > cap {
		return floor
	}
	return cap - d
}

// enforcement is the enforcement of the limits (SPEC 3.2), the one rule both
// the planner (plan) and the capacity curve (simulate) run: while over a
// limit, the lowest-ranked active client at the moment (the fresh top of the
// frontier) is deactivated when it is at its floor (minCap) or the count is
// over, else cut by a quarter and re-ranked at its new capacity.
type enforcement struct {
	minCap, maxCount uint64
	count            uint64 // active clients, with the asker's slot
	capSum           uint64 // active capacity of the others
	capLimit         uint64 // what the asker leaves of maxCap
	fr               planHeap
}

// over reports whether a limit is still exceeded.
func (en *enforcement) over() bool {
	return en.count > en.maxCount || en.capSum > en.capLimit
}

// step applies the rule to e, the lowest-ranked active client (refreshed):
// it returns e's new capacity, 0 if it is deactivated; a cut client goes back
// into the frontier at its priority at the new capacity.
func (en *enforcement) step(e planEntry) uint64 {
	if e.cap > en.minCap && en.count <= en.maxCount {
		nc := quarterCut(e.cap, en.minCap)
		en.capSum -= e.cap - nc
		e.cap = nc
		e.prio = e.b.priority(nc)
		en.fr.push(e)
		return nc
	}
	en.count--
	en.capSum -= e.cap
	return 0
}

// floor returns the lowest key of e and of the frontier left: what every
// client not yet taken has as a lower bound of its priority that falls with
// the drift (an entry not yet visited has a key at least its parent's, which
// is in the frontier). A failed plan's floor tells tryActivate when to try
// again (activationDue).
func (en *enforcement) floor(e planEntry) int64 {
	f := e.key
	for i := range en.fr.items {
		f = min(f, en.fr.items[i].key)
	}
	return f
}

// maxPlanRefreshes bounds the clients one walk of a plan refreshes and
// re-sifts (see plan): past it, a client reached by key is compared at its exact priority
// but taken in key order. Keys that collapsed for many clients at once (every
// key of a pool whose clients spend more over params.PriorityHorizon than
// they have) would otherwise make a decision O(n).
const maxPlanRefreshes = 16

// plan works out how the limits would be enforced (SPEC 3.2, and doc.go's
// rule for a pool full by count) if client x (nil for none) held capacity
// xCap with the (biased) priority xPrio, without changing anything. While the
// count is over, it deactivates the client with the lowest priority at minCap
// (the lowest rank for a slot); then, while the capacity is over, it takes the
// lowest-ranked client at its capacity and cuts or deactivates it
// (enforcement.step). Each walk is lazy (a frontier over the indices of the
// slots or active heap, see planBefore): every client reached is refreshed to
// its exact priority at now, so the client taken is the lowest-ranked at the
// moment whatever the keys are. With x set, the plan fails as soon as x does
// not out-rank the client to take. On success each victim's planCap holds its
// new capacity (0 = deactivated). The work is O(k log k) for the k clients
// whose key is below the priority of the last client taken, and at most
// maxPlanRefreshes of them are refreshed per walk.
//
// Capacity sums are never formed past maxCap: with x, the others' capacity
// (capSum) is compared with what x leaves of maxCap (capLimit = maxCap - xCap),
// so the sum of everything told stays at most maxCap and cannot wrap, however
// close to MaxUint64 the limit and the request are.
func (p *ClientPool) plan(now mclock.AbsTime, x *client, xCap uint64, xPrio int64) ([]*client, bool) {
	en := enforcement{minCap: p.minCap, maxCount: p.maxCount, count: p.activeCount, capSum: p.activeCap, capLimit: p.maxCap}
	if x != nil {
		if xCap > p.maxCap || p.maxCount == 0 {
			return nil, false
		}
		if x.active {
			en.capSum -= x.capacity // activeCap includes it
		} else {
			en.count++
		}
		en.capLimit -= xCap
	}
	if !en.over() {
		return nil, true
	}
	p.planGen++
	gen := p.planGen
	kv := p.keyView(now)
	p.planFloor = math.MaxInt64
	defer p.tightenKeys(now)
	var victims []*client
	// walk takes clients from h in the order of their priority at the
	// moment (at minCap for slots) while more is true.
	walk := func(h *clientHeap, slots bool, more func() bool) bool {
		refreshes := 0
		en.fr = newPlanHeap(p.frontier.items[:0])
		defer func() { p.frontier.items = en.fr.items[:0] }()
		visit := func(i int) {
			c := h.items[i]
			key := c.key
			if slots {
				key = c.slotKey
			}
			en.fr.push(planEntry{c: c, hidx: i, key: kv.eff(keyKind(c), key), seq: c.seq, cap: c.capacity})
		}
		if h.Len() > 0 {
			visit(0)
		}
		for more() {
			if en.fr.Len() == 0 {
				return false // only possible with x, which cannot fit
			}
			e := en.fr.pop()
			if e.hidx >= 0 {
				for _, ch := range [2]int{2*e.hidx + 1, 2*e.hidx + 2} {
					if ch < h.Len() {
						visit(ch)
					}
				}
				e.hidx = -1
			}
			v := e.c
			if v == x || v.planGen == gen && v.planCap == 0 { // x, or deactivated for a slot
				continue
			}
			if x != nil && xPrio <= e.rank() {
				// Every priority left is at least e's rank (a key is at
				// most its client's priority, and the frontier holds the
				// lowest rank of what is left): x out-ranks nobody.
				p.planFloor = en.floor(e)
				return false
			}
			if !e.hasPrio { // refresh, and re-sift while the budget lasts
				e.b = v.snapAt(now)
				if slots {
					e.prio = e.b.priority(p.minCap)
				} else {
					e.prio = e.b.priority(e.cap)
				}
				e.hasPrio = true
				if looseKey(e.key, e.prio) {
					p.refreshed = append(p.refreshed, v)
				}
				if refreshes < maxPlanRefreshes {
					refreshes++
					en.fr.push(e)
					continue
				}
				if x != nil && xPrio <= e.prio {
					p.planFloor = en.floor(e)
					return false
				}
			}
			if v.planGen != gen {
				v.planGen = gen
				victims = append(victims, v)
			}
			v.planCap = en.step(e)
		}
		return true
	}
	if !walk(&p.slots, true, func() bool { return en.count > en.maxCount }) ||
		!walk(&p.active, false, en.over) {
		return nil, false
	}
	return victims, true
}

// tightenKeys re-keys the active clients the last plan refreshed and found
// loose (looseKey), once its walks are over (they hold heap indices). A key that time made loose (the
// client's priority fell slower than the drift) is tight again, so the next
// walk that reaches the bottom of the heaps, the only part decisions read,
// refreshes fewer clients. At most maxPlanRefreshes per walk are refreshed
// and re-sifted, and the rest at most once each, so this adds O(k log n) to
// a plan that refreshed k.
func (p *ClientPool) tightenKeys(now mclock.AbsTime) {
	for _, c := range p.refreshed {
		if c.active {
			p.rekey(c, now)
		}
	}
	clear(p.refreshed)
	p.refreshed = p.refreshed[:0]
}

// applyPlan carries out a successful plan; the clients it deactivates are
// deactivated for reason.
func (p *ClientPool) applyPlan(victims []*client, now mclock.AbsTime, acts *callbacks, reason Reason) {
	for _, v := range victims {
		if !v.active {
			continue
		}
		if v.planCap == 0 {
			p.deactivate(v, now, acts, reason)
		} else {
			p.setCap(v, v.planCap, false, now, acts)
		}
	}
}

// tryActivate activates waiting clients in priority order at minCap while the
// best of them, evaluated with the connected bias, out-ranks whoever
// enforcement would cut (SPEC 3.2 Activation). When the best does not, the
// activation timer is armed for the earliest moment it may (activationDue).
func (p *ClientPool) tryActivate(now mclock.AbsTime, acts *callbacks) {
	p.rebaseKeys(now)
	for i := 0; i < params.MaxActivationsPerCall; i++ {
		w := p.inactiveBest.top()
		if w == nil {
			return
		}
		b := w.snapAt(now)
		prio := b.estimate(p.minCap, 0, 0, p.bias)
		victims, ok := p.plan(now, w, p.minCap, prio)
		if !ok {
			p.armActivation(p.activationDue(prio, p.planFloor))
			return
		}
		p.applyPlan(victims, now, acts, ReasonEvicted)
		p.activate(w, p.minCap, now, acts)
	}
	p.armActivation(0) // more may follow: go on at once
}

// SetCapacity changes the capacity of an active client (SPEC 3.2). bias is
// raised to the connected bias. A client that is not registered (or was told
// to disconnect) gets ErrNotConnected, an inactive one 0 and no error. A
// request below minCap means minCap; a raise above minCap needs a positive
// balance (ErrNoPriority). A raise that cannot be met in full grants the
// largest capacity between the current one and the request that the client,
// biased, can hold (Fix: partial grants); callers compare the result with what
// they asked for. Holding a capacity includes keeping out the waiting clients
// (and those the raise deactivates): one that out-ranked the client there
// would be activated at once and cut the raise back. A decrease always
// succeeds. The result is the capacity the peer ends up with, told with
// UpdateCapacity(capacity, requested).
func (p *ClientPool) SetCapacity(n *enode.Node, reqCap uint64, bias time.Duration, requested bool) (uint64, error) {
	if n == nil {
		return 0, ErrNotConnected
	}
	var acts callbacks
	p.mu.Lock()
	capacity, err := p.setCapacity(n.ID(), reqCap, bias, requested, &acts)
	p.mu.Unlock()
	acts.run(p)
	return capacity, err
}

func (p *ClientPool) setCapacity(id enode.ID, reqCap uint64, bias time.Duration, requested bool, acts *callbacks) (uint64, error) {
	c := p.clients[id]
	if p.stopped || c == nil || c.disconnected {
		return 0, ErrNotConnected
	}
	if !c.active {
		return 0, nil
	}
	now := p.clock.Now()
	if c.settle(now) {
		p.lostPriority(c, now, acts)
	}
	if reqCap < p.minCap {
		reqCap = p.minCap
	}
	bias = maxDuration(bias, p.bias)
	cur := c.capacity
	switch {
	case reqCap == cur:
		return cur, nil
	case reqCap < cur:
		p.setCap(c, reqCap, requested, now, acts)
		p.tryActivate(now, acts)
		p.finish(now, acts)
		return reqCap, nil
	case c.pos.IsZero(): // settled just now: a decayed balance was cut above
		return cur, ErrNoPriority
	}
	b := c.snapAt(now)
	// A capacity is held only if no waiting client would then out-rank c at
	// it (Fix: the activation that follows every change, or one run by a
	// nested call such as Unregister from Disconnect, cut the raise back, so
	// the caller was told a capacity the peer did not end up with). The best
	// waiting client is tried first and fails at c unless its biased
	// estimate exceeds c's priority: c keeps priority(g) >= rival, that is
	// g <= pos/rival. The clients the raise deactivates join the waiting set:
	// try checks them.
	rival := p.waitingRival(now, nil)
	if rival > 1 && b.pos/uint64(rival) < reqCap {
		reqCap = max(b.pos/uint64(rival), cur)
	}
	try := func(capacity uint64) ([]*client, bool) {
		victims, ok := p.plan(now, c, capacity, b.estimate(capacity, 0, 0, bias))
		if !ok || !p.outranksDeactivated(b.priority(capacity), victims, now) {
			return nil, false
		}
		return victims, true
	}
	if reqCap > p.maxCap && p.maxCap > cur {
		reqCap = p.maxCap // nobody can hold more
	}
	if reqCap == cur {
		return cur, nil
	}
	grant := cur
	victims, ok := try(reqCap)
	if ok {
		grant = reqCap
	} else {
		// The largest capacity in [cur, reqCap) the client can hold: the
		// capacity curve's answer first (rebuilt if stale), checked by a real
		// plan, then a bounded bisection if the curve was off.
		lo, hi := cur, reqCap // lo can be held, hi cannot
		if est := p.curveEstimate(c, now, bias, rival); est > lo && est < hi {
			if v, ok := try(est); ok {
				lo, victims = est, v
				if _, ok := try(est + 1); !ok {
					hi = est + 1
				}
			} else {
				hi = est
			}
		}
		for i := 0; i < params.SetCapacitySearchSteps && hi-lo > 1; i++ {
			mid := lo + (hi-lo)/2
			if v, ok := try(mid); ok {
				lo, victims = mid, v
			} else {
				hi = mid
			}
		}
		grant = lo
		if grant > cur {
			victims, ok = try(grant) // the planCap marks belong to the last attempt
			if !ok {
				grant = cur
			}
		}
	}
	if grant > cur {
		p.applyPlan(victims, now, acts, ReasonEvicted)
		p.setCap(c, grant, requested, now, acts)
		// Waiting clients compete now, as after every change, so a nested
		// call finds nothing left to activate; by the checks above none of
		// them cuts c.
		p.tryActivate(now, acts)
		p.finish(now, acts)
	}
	return c.capacity, nil
}

// waitingRival returns the biased estimate at minCap of the waiting client
// tryActivate tries first, apart from skip (math.MinInt64 if none waits).
func (p *ClientPool) waitingRival(now mclock.AbsTime, skip *client) int64 {
	items := p.inactiveBest.items
	var w *client
	switch {
	case len(items) == 0:
		return math.MinInt64
	case items[0] != skip:
		w = items[0]
	case len(items) == 1:
		return math.MinInt64
	default: // the next best is one of the top's children
		w = items[1]
		if len(items) > 2 && betterInactive(items[2], w) {
			w = items[2]
		}
	}
	return w.snapAt(now).estimate(p.minCap, 0, 0, p.bias)
}

// outranksDeactivated reports whether priority prio is at least the biased
// estimate at minCap of every client a plan deactivates (planCap 0): each
// would then fail to come back by cutting a client with that priority.
func (p *ClientPool) outranksDeactivated(prio int64, victims []*client, now mclock.AbsTime) bool {
	for _, v := range victims {
		if v.planCap == 0 && v.snapAt(now).estimate(p.minCap, 0, 0, p.bias) > prio {
			return false
		}
	}
	return true
}

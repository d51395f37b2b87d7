package vflux

import (
	"net"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// The scheduler is the deterministic core of the request limiter: a plain struct
// without locks, goroutines or clock of its own; every call is given the time.
// The blocking limiter (limiter.go) wraps it for concurrent callers, and tests
// drive it directly on a simulated clock.
//
// Waiting requests form a tree:
//
//	root
//	 ├── class "established"  address groups served before (recently)
//	 │    └── address group   (AddressGroup: IPv4 address, IPv6 /64)
//	 │         └── node ID    FIFO of requests
//	 └── class "new"          address groups not served recently
//	      └── ...
//
// At every level the child with the least virtual time is served next, and
// serving a request of cost c adds c to the virtual time of its ID, its group
// and its class (start-time fair queueing): backlogged siblings get equal
// shares of the served cost, whatever their request costs or rates. A parent's
// virtual clock is the largest start tag it has served; a child that starts
// waiting begins at the clock, so idle time earns no credit (and a newcomer is
// served before whoever was served just now), and a child that stops waiting
// while ahead of the clock keeps that debt until the clock passes it, so
// leaving and coming back wins nothing. New groups share one class, so a flood
// from ever-fresh addresses takes at most a quarter of the service from groups
// that have been served before (the new class is charged newClassWeight times
// its cost).
//
// When the queued cost or the number of waiting requests exceeds its bound, the
// newest requests of the biggest offender are dropped until it holds again: the
// offender is found top-down, the class, then the group, then the ID with the
// most queued cost. A dropped ID and its group are penalised until they are
// next served: their queued cost counts twice when the next offender is chosen,
// so an offender that keeps flooding is dropped again first, before anyone
// whose queue is merely long. Penalties never change the service order, only
// who is dropped, and dropping from the tail keeps the offender's oldest
// requests: a flooder still gets its fair share of the service, and only that.
// Rate limiting is a generic cell rate algorithm in integer nanoseconds.

const (
	// knownGroupsPerGeneration bounds the memory of which address groups were
	// served: two generations of this many groups are kept, so a group served in
	// the last 16k-32k distinct groups' time counts as established.
	knownGroupsPerGeneration = 1 << 14
	// maxRetainedPerParent bounds how many idle IDs (per group) or groups (per
	// class) are remembered for their debt; the oldest are forgotten first.
	maxRetainedPerParent = 1024
	// maxFreeNodes bounds the forgotten nodes kept for reuse, per level.
	maxFreeNodes = 1024
	// newClassWeight: when both classes wait, the new class gets one part of
	// the service for every newClassWeight parts the established class gets.
	// A flood from fresh addresses thus leaves three quarters to the groups that
	// were served before, and a newcomer still gets in when the flood pauses.
	newClassWeight = 3
	// maxPenalties bounds the remembered penalties of IDs and groups that left
	// the tree (each); when full they are all forgotten.
	maxPenalties = 1 << 14
)

// Tree levels.
const (
	levelRoot = iota
	levelClass
	levelGroup
	levelID
)

// Request classes.
const (
	classEstablished = iota
	classNew
)

// groupKey is the fixed-size form of an address group: an IPv4 address as an
// IPv4-mapped IPv6 address, an IPv6 /64 prefix with byte 15 set to 1, or all
// zeros for a requester without an IP address.
type groupKey [16]byte

// groupKeyOf returns the address group key of ip; it agrees with AddressGroup.
func groupKeyOf(ip net.IP) groupKey {
	var k groupKey
	if ip4 := ip.To4(); ip4 != nil {
		k[10], k[11] = 0xff, 0xff
		copy(k[12:], ip4)
		return k
	}
	if len(ip) == net.IPv6len {
		copy(k[:8], ip[:8])
		k[15] = 1
	}
	return k
}

// idKey identifies one ID queue: the same node ID sending from two address
// groups has two queues.
type idKey struct {
	group groupKey
	id    enode.ID
}

// request is one batch waiting for (or holding) the service.
type request struct {
	id       enode.ID
	group    groupKey
	cost     uint64
	deadline mclock.AbsTime
	node     *fnode // the ID queue it waits in; nil when not waiting

	// Owned by the blocking limiter, guarded by its lock.
	state uint8
	done  chan bool
}

// fnode is a node of the scheduling tree (root, class, group or ID queue).
type fnode struct {
	level     int
	parent    *fnode
	vtime     uint64 // start tag: the virtual time of its next service
	queued    uint64 // cost waiting in this subtree
	penalised bool   // dropped from since it was last served
	seq       uint64 // activation order; breaks ties

	tagIdx, loadIdx int    // indices in the parent's heaps; -1 when idle
	retainStamp     uint64 // matches its entry in the parent's retained list; 0 if none

	// Children (root, classes and groups).
	vclock uint64   // largest start tag served among the children
	byTag  flowHeap // waiting children, least vtime first
	byLoad flowHeap // waiting children, most queued cost first
	// retained lists the idle children kept for their debt, oldest first from
	// retainHead; entries whose stamp no longer matches the child are stale.
	retained   []retainRef
	retainHead int

	gkey groupKey   // group and ID nodes
	id   enode.ID   // ID nodes
	reqs []*request // ID nodes: waiting requests, oldest first from head
	head int
}

func tagLess(a, b *fnode) bool {
	return a.vtime < b.vtime || (a.vtime == b.vtime && a.seq < b.seq)
}

func loadLess(a, b *fnode) bool {
	if la, lb := a.load(), b.load(); la != lb {
		return la > lb
	}
	if a.vtime != b.vtime {
		return a.vtime > b.vtime
	}
	return a.seq > b.seq
}

// load ranks offenders: the queued cost, counted twice while penalised.
func (n *fnode) load() uint64 {
	if n.penalised {
		return 2 * n.queued
	}
	return n.queued
}

func tagIndex(n *fnode) *int  { return &n.tagIdx }
func loadIndex(n *fnode) *int { return &n.loadIdx }

func newNode(level int, parent *fnode) *fnode {
	n := &fnode{level: level, parent: parent, tagIdx: -1, loadIdx: -1}
	if level != levelID {
		n.byTag = flowHeap{less: tagLess, index: tagIndex}
		n.byLoad = flowHeap{less: loadLess, index: loadIndex}
	}
	return n
}

// alloc returns a node for a new group or ID, reusing a forgotten one if any.
func (s *scheduler) alloc(level int, parent *fnode) *fnode {
	free := &s.freeIDs
	if level == levelGroup {
		free = &s.freeGroups
	}
	k := len(*free)
	if k == 0 {
		return newNode(level, parent)
	}
	n := (*free)[k-1]
	(*free)[k-1] = nil
	*free = (*free)[:k-1]
	// Keep the slices' memory; everything else starts afresh.
	reqs, byTag, byLoad, retained := n.reqs[:0], n.byTag, n.byLoad, n.retained[:0]
	*n = fnode{level: level, parent: parent, tagIdx: -1, loadIdx: -1,
		reqs: reqs, byTag: byTag, byLoad: byLoad, retained: retained}
	return n
}

func (n *fnode) front() *request { return n.reqs[n.head] }

// push appends r to the ID queue, first moving the queue to the front of its
// slice when the consumed head would make the slice grow.
func (n *fnode) push(r *request) {
	if n.head > 0 && len(n.reqs) == cap(n.reqs) {
		k := copy(n.reqs, n.reqs[n.head:])
		clear(n.reqs[k:])
		n.reqs, n.head = n.reqs[:k], 0
	}
	n.reqs = append(n.reqs, r)
}

// removeReq takes r out of the ID queue.
func (n *fnode) removeReq(r *request) {
	if last := len(n.reqs) - 1; n.reqs[n.head] == r {
		n.reqs[n.head] = nil
		n.head++
	} else if n.reqs[last] == r {
		n.reqs[last] = nil
		n.reqs = n.reqs[:last]
	} else {
		for i := n.head + 1; i < len(n.reqs); i++ {
			if n.reqs[i] == r {
				copy(n.reqs[i:], n.reqs[i+1:])
				n.reqs[len(n.reqs)-1] = nil
				n.reqs = n.reqs[:len(n.reqs)-1]
				break
			}
		}
	}
	if n.head == len(n.reqs) {
		n.reqs, n.head = n.reqs[:0], 0
	}
}

// scheduler is the limiter's scheduling core. It is not safe for concurrent use.
type scheduler struct {
	interval      float64 // ns of rate per unit of cost; 0 means unlimited
	burst         int64   // ns the rate may run ahead of the clock
	maxQueuedCost uint64
	maxWaiters    int
	maxRetained   int // maxRetainedPerParent; tests lower it
	knownPerGen   int // knownGroupsPerGeneration; tests lower it

	tat     mclock.AbsTime // theoretical arrival time of the rate limiter
	busy    bool           // a request holds the service
	waiting int            // number of waiting requests
	seq     uint64

	root     *fnode
	classes  [2]*fnode
	groups   map[groupKey]*fnode
	ids      map[idKey]*fnode
	known    map[groupKey]struct{}
	knownOld map[groupKey]struct{}

	// Forgotten group and ID nodes for reuse (at most maxFreeNodes each).
	freeGroups, freeIDs []*fnode

	// Penalties of IDs and groups that are not in the tree.
	idPenalties    map[idKey]struct{}
	groupPenalties map[groupKey]struct{}

	// dropped collects the requests dropped by scheduler calls (overflow, expiry);
	// the caller drains it after each call.
	dropped []*request
}

// newScheduler creates a scheduler serving rate cost units per second (0 means
// unlimited) that keeps at most maxQueuedCost of cost and maxWaiters requests
// waiting.
func newScheduler(rate float64, maxQueuedCost uint64, maxWaiters int) *scheduler {
	s := &scheduler{
		maxQueuedCost:  maxQueuedCost,
		maxWaiters:     maxWaiters,
		maxRetained:    maxRetainedPerParent,
		knownPerGen:    knownGroupsPerGeneration,
		known:          make(map[groupKey]struct{}),
		idPenalties:    make(map[idKey]struct{}),
		groupPenalties: make(map[groupKey]struct{}),
	}
	if rate > 0 {
		s.interval = float64(time.Second) / rate
		s.burst = int64(s.interval * params.MaxRequestsPerBatch)
	}
	s.reset()
	return s
}

// reset empties the tree (not the rate state or the known groups).
func (s *scheduler) reset() {
	s.root = newNode(levelRoot, nil)
	for i := range s.classes {
		s.classes[i] = newNode(levelClass, s.root)
	}
	s.groups = make(map[groupKey]*fnode)
	s.ids = make(map[idKey]*fnode)
	s.waiting = 0
}

func (s *scheduler) nextSeq() uint64 {
	s.seq++
	return s.seq
}

// rateWait returns how long until the rate allows the next request (0: now).
func (s *scheduler) rateWait(now mclock.AbsTime) time.Duration {
	if s.interval == 0 {
		return 0
	}
	if d := int64(s.tat) - s.burst - int64(now); d > 0 {
		return time.Duration(d)
	}
	return 0
}

// chargeRate accounts a started request of the given cost to the rate.
func (s *scheduler) chargeRate(now mclock.AbsTime, cost uint64) {
	if s.interval == 0 {
		return
	}
	if s.tat < now {
		s.tat = now
	}
	s.tat += mclock.AbsTime(s.interval * float64(cost))
}

// tryStart lets a request start at once when the scheduler is idle: nothing in
// service, nobody waiting, and the rate allows it. The caller must call done.
func (s *scheduler) tryStart(now mclock.AbsTime, group groupKey, cost uint64) bool {
	if s.busy || s.waiting > 0 || s.rateWait(now) > 0 {
		return false
	}
	s.busy = true
	s.chargeRate(now, cost)
	s.markKnown(group)
	return true
}

// enqueue adds r to the queue of its ID, then enforces the bounds, which may
// drop r itself (see dropped).
func (s *scheduler) enqueue(r *request) {
	n := s.leaf(r.group, r.id)
	n.push(r)
	r.node = n
	s.waiting++
	s.addQueued(n, r.cost)
	for s.root.queued > s.maxQueuedCost || s.waiting > s.maxWaiters {
		v := s.root
		for v.level != levelID {
			v = v.byLoad.top()
		}
		s.dropNewest(v)
	}
}

// next picks the request to serve now. It returns nil when the service is busy
// or nobody waits, or nil and the time to wait when the rate does not allow a
// request yet. Expired requests met on the way are dropped.
func (s *scheduler) next(now mclock.AbsTime) (*request, time.Duration) {
	if s.busy || s.waiting == 0 {
		return nil, 0
	}
	if d := s.rateWait(now); d > 0 {
		return nil, d
	}
	for s.waiting > 0 {
		n := s.root
		for n.level != levelID {
			n = n.byTag.top()
		}
		r := n.front()
		if r.deadline < now {
			s.take(n, r, false)
			s.dropped = append(s.dropped, r)
			continue
		}
		s.take(n, r, true)
		s.busy = true
		s.chargeRate(now, r.cost)
		s.markKnown(r.group)
		if g := s.groups[r.group]; g != nil && g.parent == s.classes[classNew] {
			s.migrate(g)
		}
		return r, 0
	}
	return nil, 0
}

// done ends the service of the request that started last.
func (s *scheduler) done() { s.busy = false }

// remove takes a waiting request out of its queue (its caller gave up). It
// reports whether r was waiting.
func (s *scheduler) remove(r *request) bool {
	if r.node == nil {
		return false
	}
	s.take(r.node, r, false)
	return true
}

// dropAll drops every waiting request and empties the tree.
func (s *scheduler) dropAll() {
	for _, n := range s.ids {
		for _, r := range n.reqs[n.head:] {
			r.node = nil
			s.dropped = append(s.dropped, r)
		}
	}
	s.reset()
}

// leaf returns the ID queue of (group, id), creating it (and its group) if needed.
func (s *scheduler) leaf(gk groupKey, id enode.ID) *fnode {
	key := idKey{gk, id}
	if n := s.ids[key]; n != nil {
		return n
	}
	g := s.groups[gk]
	if g != nil && g.parent == s.classes[classNew] && s.isKnown(gk) {
		s.migrate(g)
		g = s.groups[gk] // migrate may have forgotten it
	}
	if g == nil {
		class := s.classes[classNew]
		if s.isKnown(gk) {
			class = s.classes[classEstablished]
		}
		g = s.alloc(levelGroup, class)
		g.gkey = gk
		_, g.penalised = s.groupPenalties[gk]
		delete(s.groupPenalties, gk)
		s.groups[gk] = g
	}
	n := s.alloc(levelID, g)
	n.gkey, n.id = gk, id
	_, n.penalised = s.idPenalties[key]
	delete(s.idPenalties, key)
	s.ids[key] = n
	return n
}

// addQueued adds cost to n and its ancestors, activating those that start waiting.
func (s *scheduler) addQueued(n *fnode, cost uint64) {
	for x := n; x != nil; x = x.parent {
		was := x.queued
		x.queued += cost
		if x.parent == nil {
			break
		}
		if was == 0 {
			s.activate(x)
		} else {
			x.parent.byLoad.fix(x)
		}
	}
}

// activate puts x, which just started waiting, into its parent's heaps.
func (s *scheduler) activate(x *fnode) {
	p := x.parent
	x.retainStamp = 0 // its retained entry, if any, is now stale
	if x.vtime < p.vclock {
		x.vtime = p.vclock
	}
	x.seq = s.nextSeq()
	p.byTag.push(x)
	p.byLoad.push(x)
}

// take removes r from its ID queue n. With charge, r is being served: its ID,
// group and class are charged its cost.
func (s *scheduler) take(n *fnode, r *request, charge bool) {
	n.removeReq(r)
	r.node = nil
	s.waiting--
	for x := n; x.parent != nil; x = x.parent {
		p := x.parent
		if charge {
			if x.vtime > p.vclock {
				p.vclock = x.vtime
			}
			if x == s.classes[classNew] {
				x.vtime += newClassWeight * r.cost
			} else {
				x.vtime += r.cost
			}
			x.penalised = false
		}
		x.queued -= r.cost
		s.settle(x)
		if charge {
			s.expireDebts(p)
		}
	}
	s.root.queued -= r.cost
}

// settle puts x where it belongs after its queued cost or virtual time changed:
// still waiting (heaps fixed), or idle (kept for its debt, or forgotten).
func (s *scheduler) settle(x *fnode) {
	p := x.parent
	if x.queued > 0 {
		p.byTag.fix(x)
		p.byLoad.fix(x)
		return
	}
	if x.tagIdx < 0 {
		return // already idle
	}
	p.byTag.remove(x)
	p.byLoad.remove(x)
	switch {
	case x.level == levelClass:
		// Classes always exist.
	case x.vtime > p.vclock:
		s.retain(x)
	default:
		s.forget(x)
	}
}

// retainRef is an entry of a retained list.
type retainRef struct {
	n     *fnode
	stamp uint64
}

func (r retainRef) valid() bool { return r.n.retainStamp == r.stamp }

// retain remembers the idle node x for its debt, forgetting the oldest when its
// parent remembers too many.
func (s *scheduler) retain(x *fnode) {
	p := x.parent
	if p.retainHead > 0 && len(p.retained) == cap(p.retained) {
		k := copy(p.retained, p.retained[p.retainHead:])
		clear(p.retained[k:])
		p.retained, p.retainHead = p.retained[:k], 0
	}
	x.retainStamp = s.nextSeq()
	p.retained = append(p.retained, retainRef{x, x.retainStamp})
	for len(p.retained)-p.retainHead > s.maxRetained {
		if r := p.popRetained(); r.valid() {
			s.forget(r.n)
		}
	}
}

// popRetained removes the oldest entry of the retained list.
func (p *fnode) popRetained() retainRef {
	r := p.retained[p.retainHead]
	p.retained[p.retainHead] = retainRef{}
	p.retainHead++
	if p.retainHead == len(p.retained) {
		p.retained, p.retainHead = p.retained[:0], 0
	}
	return r
}

// expireDebts forgets the oldest idle children of p while the clock has passed
// their debt. (A child whose debt expired behind a younger debt stays a while;
// it behaves exactly as a forgotten one would.)
func (s *scheduler) expireDebts(p *fnode) {
	for p.retainHead < len(p.retained) {
		r := p.retained[p.retainHead]
		if r.valid() && r.n.vtime > p.vclock {
			return
		}
		p.popRetained()
		if r.valid() {
			s.forget(r.n)
		}
	}
}

// forget deletes an idle group or ID node (and a group's remembered IDs),
// keeping their penalties aside.
func (s *scheduler) forget(x *fnode) {
	x.retainStamp = 0
	switch x.level {
	case levelID:
		s.forgetID(x)
	case levelGroup:
		for _, r := range x.retained[x.retainHead:] {
			if r.valid() {
				r.n.retainStamp = 0
				s.forgetID(r.n)
			}
		}
		clear(x.retained)
		x.retained, x.retainHead = x.retained[:0], 0
		delete(s.groups, x.gkey)
		if len(s.freeGroups) < maxFreeNodes {
			s.freeGroups = append(s.freeGroups, x)
		}
		if x.penalised {
			if len(s.groupPenalties) >= maxPenalties {
				clear(s.groupPenalties)
			}
			s.groupPenalties[x.gkey] = struct{}{}
		}
	}
}

func (s *scheduler) forgetID(x *fnode) {
	key := idKey{x.gkey, x.id}
	delete(s.ids, key)
	if len(s.freeIDs) < maxFreeNodes {
		s.freeIDs = append(s.freeIDs, x)
	}
	if x.penalised {
		if len(s.idPenalties) >= maxPenalties {
			clear(s.idPenalties)
		}
		s.idPenalties[key] = struct{}{}
	}
}

// dropNewest drops the newest request of the ID queue n and penalises the ID
// and its group.
func (s *scheduler) dropNewest(n *fnode) {
	// Penalise first: take may forget the nodes, keeping their penalty aside.
	for x := n; x.level >= levelGroup; x = x.parent {
		x.penalised = true
		x.parent.byLoad.fix(x)
	}
	r := n.reqs[len(n.reqs)-1]
	s.take(n, r, false)
	s.dropped = append(s.dropped, r)
}

// migrate moves a group of the new class, which has now been served, to the
// established class, keeping its debt.
func (s *scheduler) migrate(g *fnode) {
	from, to := g.parent, s.classes[classEstablished]
	var debt uint64
	if g.vtime > from.vclock {
		debt = g.vtime - from.vclock
	}
	if q := g.queued; q > 0 {
		from.byTag.remove(g)
		from.byLoad.remove(g)
		for x := from; x.parent != nil; x = x.parent {
			x.queued -= q
			s.settle(x)
		}
		s.root.queued -= q
		g.parent = to
		g.vtime = to.vclock + debt
		g.queued = 0
		s.addQueued(g, q)
		return
	}
	g.retainStamp = 0 // stale in the old class's list
	g.parent = to
	g.vtime = to.vclock + debt
	if debt > 0 {
		s.retain(g)
	}
}

func (s *scheduler) isKnown(k groupKey) bool {
	if _, ok := s.known[k]; ok {
		return true
	}
	_, ok := s.knownOld[k]
	return ok
}

func (s *scheduler) markKnown(k groupKey) {
	if _, ok := s.known[k]; ok {
		return
	}
	if len(s.known) >= s.knownPerGen {
		s.knownOld, s.known = s.known, make(map[groupKey]struct{})
	}
	s.known[k] = struct{}{}
}

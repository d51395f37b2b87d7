package vflux

import (
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// Maintenance of the scheduling tree (see scheduler.go for the rules): nodes,
// their queues, activation, charging, idle debts, forgetting and penalties.

// fnode is a node of the scheduling tree (root, class, group or ID queue).
type fnode struct {
	level     int
	parent    *fnode
	vtime     uint64 // start tag: the virtual time of its next service
	queued    uint64 // cost waiting in this subtree
	penalised bool   // dropped from since it was last served
	fresh     bool   // started waiting after the clock passed its tag; not served since
	idleTag   uint64 // fresh: its tag before it started waiting (lower: idle longer)
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

// tagLess orders waiting siblings for service: the least start tag first;
// among equal tags a fresh one (idle while the clock moved on) before the
// standing backlogs, then the one with less cost waiting (a sparse sender
// before a standing backlog), then the one that started waiting first.
func tagLess(a, b *fnode) bool {
	if a.vtime != b.vtime {
		return a.vtime < b.vtime
	}
	if a.fresh != b.fresh {
		return a.fresh
	}
	if a.fresh && a.idleTag != b.idleTag {
		return a.idleTag < b.idleTag
	}
	if a.queued != b.queued {
		return a.queued < b.queued
	}
	return a.seq < b.seq
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
			x.parent.byTag.fix(x)
			x.parent.byLoad.fix(x)
		}
	}
}

// freshens reports whether children of p can be fresh: classes and address
// groups can, node IDs cannot (fresh IDs cost nothing to make).
func freshens(p *fnode) bool { return p.level != levelGroup }

// remembered reports whether the idle child x of p must be kept for its tag:
// it has debt (its tag is ahead of the clock), or, where children can be
// fresh, its tag is at the clock (it was not idle while the clock moved on).
// A forgotten child behaves exactly as a remembered one would.
func remembered(p, x *fnode) bool {
	if freshens(p) {
		return x.vtime+rememberIdle >= p.vclock
	}
	return x.vtime > p.vclock
}

// rememberIdle: an idle class or group is remembered until the clock is this
// far past its tag, so that fresh siblings are ordered by how long they were
// idle; one forgotten is older than any remembered one.
const rememberIdle = 2 * params.MaxRequestsPerBatch

// activate puts x, which just started waiting, into its parent's heaps.
func (s *scheduler) activate(x *fnode) {
	p := x.parent
	x.retainStamp = 0 // its retained entry, if any, is now stale
	x.fresh = false
	if x.vtime < p.vclock {
		x.idleTag = x.vtime
		x.vtime = p.vclock
		x.fresh = freshens(p)
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
			x.fresh = false
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
	case remembered(p, x):
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

// expireDebts forgets the oldest idle children of p that need no longer be
// remembered (the clock has passed their tag). (A child that expired behind a
// younger entry stays a while; it behaves exactly as a forgotten one would.)
func (s *scheduler) expireDebts(p *fnode) {
	for p.retainHead < len(p.retained) {
		r := p.retained[p.retainHead]
		if r.valid() && remembered(p, r.n) {
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
	if remembered(to, g) {
		s.retain(g)
	} else {
		s.forget(g)
	}
}

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
// waiting begins at its own tag (where its last service ended) or at the clock,
// whichever is later, so idle time earns no share, and a child that stops
// waiting while ahead of the clock keeps that debt until the clock passes it,
// so leaving and coming back wins nothing. Every waiting tag is at least the
// clock, and backlogged children not yet served this round sit exactly at it;
// a class or address group that starts waiting after the clock has passed its
// tag (it was idle while its siblings were served) is fresh: among equal tags
// fresh children go first, the longest idle first, ahead of the standing
// backlogs. So a sparse sender is served at once through a flood instead of
// after a whole round of flooders, while a child is fresh at most once per
// round (served, its tag is ahead of the clock again). Node IDs are never fresh
// (fresh IDs cost nothing). Then among equal tags the child with less cost
// waiting goes first (a sparse sender before a standing backlog: this alone
// orders the new class, whose groups all start at its clock and leave it when
// first served), then the one that started waiting first. An idle child is
// remembered until the clock is rememberIdle past its tag (IDs: until the clock
// passes it); a forgotten one behaves as one idle for longest.
//
// New groups share one class, so a flood from ever-fresh addresses takes at
// most a quarter of the service from groups that have been served before (the
// new class is charged newClassWeight times its cost).
//
// A newcomer must not pay for the flood that shares its class: right after the
// new class served a flood batch, the new class is that batch's surcharge
// (newClassWeight times its cost: 48 ms at 1,000/s for 16 requests) ahead of
// the established class, and a newcomer's first query that waited for it on
// top of the batch in service missed the TALKREQ bound of 50 ms. So each batch
// heavier than newcomerMaxCost that the new class serves gives newcomers a
// credit of newcomerCreditMax: light batches of new groups (at most
// newcomerMaxCost waiting in the group), up to that cost in all, go ahead of
// the established class's flood batches (not ahead of a sparse established
// sender: a fresh group with a light batch). They are still charged to the
// new class, which is thus at most a few light batches ahead of its share, and
// a flood of light batches alone earns no credit.
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
	// newcomerMaxCost: a group of the new class with at most this much cost
	// waiting is a newcomer with a light batch (a first capacity query with
	// server info and balance costs 3), far below a flood batch
	// (params.MaxRequestsPerBatch).
	newcomerMaxCost = 4
	// newcomerCreditMax: after the new class served a batch heavier than
	// newcomerMaxCost, light batches of this much cost in all (those of three
	// newcomers arriving together) go ahead of the established class's
	// standing backlog instead of waiting for that batch's surcharge.
	newcomerCreditMax = 3 * newcomerMaxCost
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
	// newcomerCredit is the cost of light batches that may still go ahead of
	// the established class's backlog since the new class last served a flood
	// batch.
	newcomerCredit uint64

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
	s.newcomerCredit = 0
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
		class := s.nextClass()
		n := class
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
		if class == s.classes[classNew] {
			s.creditNewcomers(r.cost)
		}
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

// nextClass returns the class to serve next: the first in tag order, except
// that a newcomer's light batch goes ahead of the established class's flood
// batches while the newcomers have credit (see the scheduler's comment).
func (s *scheduler) nextClass() *fnode {
	top := s.root.byTag.top()
	est, nw := s.classes[classEstablished], s.classes[classNew]
	if g := est.byTag.top(); top != est || nw.queued == 0 || g.fresh && g.queued <= newcomerMaxCost {
		return top // a sparse established sender goes first anyway
	}
	if q := nw.byTag.top().queued; q <= newcomerMaxCost && q <= s.newcomerCredit {
		return nw
	}
	return top
}

// creditNewcomers accounts a request of the given cost served from the new
// class: a flood batch gives the newcomers credit, a light batch uses it.
func (s *scheduler) creditNewcomers(cost uint64) {
	if cost > newcomerMaxCost {
		s.newcomerCredit = newcomerCreditMax
	} else {
		s.newcomerCredit -= min(cost, s.newcomerCredit)
	}
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

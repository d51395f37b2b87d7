package vflux

import (
	"fmt"
	"math/rand"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// check verifies the scheduler's structural invariants: queued costs add up,
// every node is either waiting (in its parent's tag and load heaps) or idle and
// remembered (in its parent's retained list), heaps are ordered and indexed, and
// the waiting count matches the queues.
func (s *scheduler) check() error {
	waiting := 0
	groupSums := make(map[*fnode]uint64)
	for key, n := range s.ids {
		if n.level != levelID || n.gkey != key.group || n.id != key.id {
			return fmt.Errorf("id node %v misfiled", key.id)
		}
		var sum uint64
		for _, r := range n.reqs[n.head:] {
			if r.node != n {
				return fmt.Errorf("request of %v points to another node", key.id)
			}
			sum += r.cost
			waiting++
		}
		if sum != n.queued {
			return fmt.Errorf("id %v: queued %d, requests sum to %d", key.id, n.queued, sum)
		}
		g := n.parent
		if s.groups[key.group] != g {
			return fmt.Errorf("id %v: parent is not the group in the map", key.id)
		}
		groupSums[g] += sum
		if err := checkPlacement(n); err != nil {
			return fmt.Errorf("id %v: %w", key.id, err)
		}
	}
	classSums := make(map[*fnode]uint64)
	for key, g := range s.groups {
		if g.level != levelGroup || g.gkey != key {
			return fmt.Errorf("group %x misfiled", key)
		}
		if g.queued != groupSums[g] {
			return fmt.Errorf("group %x: queued %d, children sum to %d", key, g.queued, groupSums[g])
		}
		if g.parent != s.classes[classNew] && g.parent != s.classes[classEstablished] {
			return fmt.Errorf("group %x has no class", key)
		}
		classSums[g.parent] += g.queued
		if err := checkPlacement(g); err != nil {
			return fmt.Errorf("group %x: %w", key, err)
		}
		for _, h := range []*flowHeap{&g.byTag, &g.byLoad} {
			if err := h.check(); err != nil {
				return fmt.Errorf("group %x: %w", key, err)
			}
		}
	}
	var total uint64
	for i, c := range s.classes {
		if c.queued != classSums[c] {
			return fmt.Errorf("class %d: queued %d, groups sum to %d", i, c.queued, classSums[c])
		}
		if (c.queued > 0) != (c.tagIdx >= 0) || (c.queued > 0) != (c.loadIdx >= 0) {
			return fmt.Errorf("class %d: queued %d but heap indices %d/%d", i, c.queued, c.tagIdx, c.loadIdx)
		}
		for _, h := range []*flowHeap{&c.byTag, &c.byLoad} {
			if err := h.check(); err != nil {
				return fmt.Errorf("class %d: %w", i, err)
			}
		}
		total += c.queued
	}
	if total != s.root.queued {
		return fmt.Errorf("root queued %d, classes sum to %d", s.root.queued, total)
	}
	if waiting != s.waiting {
		return fmt.Errorf("waiting %d, queues hold %d", s.waiting, waiting)
	}
	if s.root.queued > s.maxQueuedCost || s.waiting > s.maxWaiters {
		return fmt.Errorf("bounds exceeded: cost %d, waiters %d", s.root.queued, s.waiting)
	}
	return nil
}

func checkPlacement(n *fnode) error {
	p := n.parent
	if n.queued > 0 {
		if n.tagIdx < 0 || p.byTag.items[n.tagIdx] != n || n.loadIdx < 0 || p.byLoad.items[n.loadIdx] != n || n.retainStamp != 0 {
			return fmt.Errorf("waiting but not in its parent's heaps")
		}
		return nil
	}
	if n.tagIdx >= 0 || n.loadIdx >= 0 {
		return fmt.Errorf("idle but in its parent's waiting heaps")
	}
	entries := 0
	for _, r := range p.retained[p.retainHead:] {
		if r.n == n && r.valid() {
			entries++
		}
	}
	if n.retainStamp == 0 || entries != 1 {
		return fmt.Errorf("idle and not remembered once (%d entries), yet in the tree", entries)
	}
	if len(p.retained)-p.retainHead > maxRetainedPerParent {
		return fmt.Errorf("%d remembered children", len(p.retained)-p.retainHead)
	}
	return nil
}

func (h *flowHeap) check() error {
	for i, n := range h.items {
		if *h.index(n) != i {
			return fmt.Errorf("heap index %d stored as %d", i, *h.index(n))
		}
		if i > 0 && h.less(n, h.items[(i-1)/2]) {
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	return nil
}

// TestSchedulerInvariantsUnderRandomOperations drives the scheduler with random
// arrivals, services, give-ups and clock steps and checks its invariants and its
// accounting after every operation.
func TestSchedulerInvariantsUnderRandomOperations(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			clock := &mclock.Simulated{}
			s := newScheduler([]float64{0, 500, 5000}[seed%3], uint64(16+rng.Intn(300)), 8+rng.Intn(100))
			if seed%2 == 0 { // exercise forgetting: few remembered debts and groups
				s.maxRetained, s.knownPerGen = 2, 4
			}
			var live []*request
			var served, dropped, removed, enqueued int
			drain := func() {
				for _, r := range s.dropped {
					if r.node != nil {
						t.Fatal("a dropped request is still queued")
					}
					dropped++
				}
				s.dropped = s.dropped[:0]
			}
			for op := 0; op < 6000; op++ {
				now := clock.Now()
				switch x := rng.Intn(100); {
				case x < 50:
					r := &request{
						id:       enode.ID{byte(rng.Intn(40))},
						group:    groupKeyOf(net.IPv4(10, 0, byte(rng.Intn(3)), byte(rng.Intn(12)))),
						cost:     uint64(1 + rng.Intn(16)),
						deadline: now.Add(time.Duration(rng.Intn(50)) * time.Millisecond),
					}
					if s.tryStart(now, r.group, r.cost) {
						served++ // holds the service until a later done
						break
					}
					s.enqueue(r)
					enqueued++
					live = append(live, r)
				case x < 70:
					if r, _ := s.next(now); r != nil {
						served++
						if r.node != nil {
							t.Fatal("a served request is still queued")
						}
					}
				case x < 80:
					s.done()
				case x < 90 && len(live) > 0:
					i := rng.Intn(len(live))
					if s.remove(live[i]) {
						removed++
					}
					live[i] = live[len(live)-1]
					live = live[:len(live)-1]
				default:
					clock.Run(time.Duration(rng.Intn(5000)) * time.Microsecond)
				}
				drain()
				if err := s.check(); err != nil {
					t.Fatalf("op %d: %v", op, err)
				}
			}
			if served == 0 || dropped == 0 || removed == 0 {
				t.Fatalf("the run did not exercise everything: served %d, dropped %d, removed %d", served, dropped, removed)
			}
			s.dropAll()
			drain()
			if err := s.check(); err != nil || s.waiting != 0 {
				t.Fatalf("after dropAll: %v, %d waiting", err, s.waiting)
			}
		})
	}
}

// TestSchedulerDropsAndPenalties walks through the overflow rules step by step.
func TestSchedulerDropsAndPenalties(t *testing.T) {
	s := newScheduler(0, 4, params.MaxWaiters)
	ga, gb := groupKeyOf(net.ParseIP("192.0.2.1")), groupKeyOf(net.ParseIP("192.0.2.2"))
	a, b := enode.ID{0xa}, enode.ID{0xb}
	if !s.tryStart(0, groupKeyOf(nil), 1) { // hold the service so everyone queues
		t.Fatal("an idle scheduler did not start")
	}
	add := func(id enode.ID, g groupKey) *request {
		r := &request{id: id, group: g, cost: 1, deadline: 1 << 62}
		s.enqueue(r)
		return r
	}
	takeDropped := func() []*request {
		d := append([]*request(nil), s.dropped...)
		s.dropped = s.dropped[:0]
		return d
	}
	a1, a2, a3 := add(a, ga), add(a, ga), add(a, ga)
	add(b, gb)
	add(b, gb)
	if d := takeDropped(); len(d) != 1 || d[0] != a3 {
		t.Fatalf("the longest queue's newest request should go first, dropped %d", len(d))
	}
	if !s.ids[idKey{ga, a}].penalised || !s.groups[ga].penalised {
		t.Fatal("the offender was not penalised")
	}
	// b now has the longer queue once it adds a third request, but a is
	// penalised: its two requests count as four, so a loses again.
	add(b, gb)
	if d := takeDropped(); len(d) != 1 || d[0] != a2 {
		t.Fatalf("the penalised offender should be dropped before a longer queue, dropped %v", d)
	}
	// Once a is empty, the penalty is remembered although its queue is gone.
	s.remove(a1)
	if _, ok := s.ids[idKey{ga, a}]; ok {
		t.Fatal("an empty ID without debt is still in the tree")
	}
	a4 := add(a, ga)
	if !s.ids[idKey{ga, a}].penalised {
		t.Fatal("the penalty was lost while the ID was idle")
	}
	// Served, a is forgiven.
	s.done()
	served := []*request{}
	for {
		r, _ := s.next(0)
		if r == nil {
			break
		}
		served = append(served, r)
		s.done()
		if r == a4 {
			if n := s.ids[idKey{ga, a}]; n != nil && n.penalised {
				t.Fatal("a served ID is still penalised")
			}
		}
	}
	if len(served) != 4 || len(takeDropped()) != 0 {
		t.Fatalf("served %d of the 4 waiting requests", len(served))
	}
}

// FuzzScheduler interprets its input as a sequence of scheduler operations
// (arrive, serve, finish, give up, advance the clock) on a small scheduler and
// checks the invariants after each one.
func FuzzScheduler(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 3, 4, 1, 0, 0, 9, 9, 2, 3, 1})
	f.Add([]byte("\x00\x10\x20\x00\x11\x21\x00\x12\x22\x01\x02\x03\x04\x05"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		clock := &mclock.Simulated{}
		s := newScheduler(1000, 24, 12)
		s.maxRetained, s.knownPerGen = 3, 5
		var live []*request
		for i := 0; i+2 < len(data); i += 3 {
			op, a, b := data[i]%5, data[i+1], data[i+2]
			now := clock.Now()
			switch op {
			case 0:
				r := &request{id: enode.ID{a % 8}, group: groupKeyOf(net.IPv4(10, 0, 0, b%6)),
					cost: uint64(1 + a%16), deadline: now.Add(time.Duration(b) * time.Millisecond)}
				if !s.tryStart(now, r.group, r.cost) {
					s.enqueue(r)
					live = append(live, r)
				}
			case 1:
				s.next(now)
			case 2:
				s.done()
			case 3:
				if len(live) > 0 {
					s.remove(live[int(a)%len(live)])
				}
			case 4:
				clock.Run(time.Duration(a) * time.Millisecond)
			}
			s.dropped = s.dropped[:0]
			if err := s.check(); err != nil {
				t.Fatalf("op %d (%d): %v", i/3, op, err)
			}
		}
	})
}

package vflux

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// TestNewcomerFirstBatchIsServedRightAfterAFloodBatchOfTheNewClass: an address
// served before keeps flood batches waiting (the established class is
// backlogged), a noisy address that was never served sends flood batches from
// fresh node IDs (and in the second case 32 more new addresses flood too), and
// right after the new class has served one of their flood batches a newcomer on
// a quiet address sends its first light batch (a capacity query with info and
// balance). The new class is then a whole flood batch's surcharge (3 x 16 ms)
// ahead of the established class; the newcomer must not wait for that on top of
// the batch in service, which took it past the TALKREQ bound of 50 ms: it is
// served as soon as the batch in service is done.
func TestNewcomerFirstBatchIsServedRightAfterAFloodBatchOfTheNewClass(t *testing.T) {
	tests := []struct {
		name       string
		floodAddrs int // new flood addresses besides the noisy one
		newcomers  int // arriving together
	}{
		{"a newcomer right after the noisy address's first flood batch", 0, 1},
		{"three newcomers together right after the noisy address's first flood batch", 0, 3},
		{"a newcomer while 32 more new flood addresses keep the new class backlogged", 32, 1},
		{"three newcomers together while 32 more new flood addresses keep the new class backlogged", 32, 3},
	}
	const (
		step       = 250 * time.Microsecond
		floodStart = 100 * time.Millisecond
		floodCost  = params.MaxRequestsPerBatch
		lightCost  = 3
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &mclock.Simulated{}
			s := newScheduler(params.DefaultServerRate, params.DefaultMaxQueuedCost, params.MaxWaiters)
			est := groupKeyOf(net.ParseIP("192.0.2.1"))
			if !s.tryStart(0, est, 1) { // served once: established
				t.Fatal("an idle scheduler did not start")
			}
			s.done()

			// Senders: a group key, a window of waiting batches, fresh IDs or one.
			type sender struct {
				group   groupKey
				window  int
				fresh   bool
				start   time.Duration
				pending int
			}
			senders := []*sender{
				{group: est, window: 2},
				{group: groupKeyOf(net.ParseIP("203.0.113.2")), window: 16, fresh: true, start: floodStart},
			}
			for i := range tt.floodAddrs {
				senders = append(senders, &sender{group: groupKeyOf(net.IPv4(198, 51, 100, byte(10+i))), window: 2, fresh: true, start: floodStart})
			}
			owner := make(map[*request]*sender)
			var live []*request // waiting, in arrival order (deadlines are monotone)
			var nextID uint64
			enqueue := func(g groupKey, id enode.ID, cost uint64, now mclock.AbsTime) *request {
				r := &request{id: id, group: g, cost: cost, deadline: now.Add(params.TalkMaxWait)}
				s.enqueue(r)
				live = append(live, r)
				return r
			}
			finish := func(r *request) {
				if o := owner[r]; o != nil {
					o.pending--
					delete(owner, r)
				}
			}
			drain := func() {
				for _, r := range s.dropped {
					finish(r)
				}
				s.dropped = s.dropped[:0]
			}

			servedBefore := map[groupKey]bool{est: true}
			var (
				newcomers []*request // in arrival order
				sentAt    mclock.AbsTime
				servedAt  = make(map[*request]mclock.AbsTime)
				dropped   = make(map[*request]bool)
			)
			// Until the newcomers' batches are served or past their bound.
			for now := mclock.AbsTime(0); time.Duration(now) < time.Second; now = clock.Now() {
				if newcomers != nil && now > sentAt.Add(params.TalkMaxWait+step) {
					break
				}
				for _, c := range senders {
					if time.Duration(now) < c.start {
						continue
					}
					// Refill the window once per step (a batch dropped at once
					// is sent again in the next step).
					for n := c.window - c.pending; n > 0; n-- {
						var id enode.ID
						if c.fresh {
							nextID++
							binary.BigEndian.PutUint64(id[:], nextID)
						}
						c.pending++
						r := &request{id: id, group: c.group, cost: floodCost, deadline: now.Add(params.TalkMaxWait)}
						owner[r] = c
						s.enqueue(r)
						live = append(live, r)
						drain()
					}
				}
				// Waiters give up at their deadline, as the limiter's do.
				for len(live) > 0 && live[0].deadline < now {
					if r := live[0]; s.remove(r) {
						finish(r)
						dropped[r] = true
					}
					live = live[1:]
				}
				for {
					r, _ := s.next(now)
					for _, d := range s.dropped {
						dropped[d] = true
					}
					drain()
					if r == nil {
						break
					}
					s.done()
					finish(r)
					servedAt[r] = now
					first := !servedBefore[r.group]
					servedBefore[r.group] = true
					if first && newcomers == nil {
						// The new class just served a flood batch: it is now
						// ahead of the established class by the surcharge.
						if nw, e := s.classes[classNew], s.classes[classEstablished]; nw.vtime < e.vtime+newClassWeight*floodCost-floodCost {
							t.Fatalf("the new class is only %d ahead of the established class (%d)", nw.vtime-e.vtime, e.vtime)
						}
						if tt.floodAddrs > 0 && s.classes[classNew].queued < 8*floodCost {
							t.Fatalf("the flood addresses do not keep the new class backlogged: %d waiting", s.classes[classNew].queued)
						}
						sentAt = now
						for i := range tt.newcomers {
							newcomers = append(newcomers, enqueue(groupKeyOf(net.IPv4(192, 0, 2, byte(200+i))), enode.ID{0xee, byte(i)}, lightCost, now))
							drain()
						}
					}
				}
				clock.Run(step)
			}
			if newcomers == nil {
				t.Fatal("the new class never served a flood batch")
			}
			// Each waits for the batch in service and the light batches of
			// the newcomers before it, nothing more.
			bound := time.Duration(floodCost) * time.Second / params.DefaultServerRate
			for i, r := range newcomers {
				wait, served := time.Duration(servedAt[r]-sentAt), servedAt[r] != 0
				switch {
				case dropped[r] || !served:
					t.Errorf("newcomer %d: its first batch, sent at %v, was dropped (bound %v)", i, time.Duration(sentAt), params.TalkMaxWait)
				case wait > bound+step:
					t.Errorf("newcomer %d waited %v, more than %v", i, wait, bound)
				default:
					t.Logf("newcomer %d: first batch sent at %v, waited %v", i, time.Duration(sentAt), wait)
				}
				bound += lightCost * time.Second / params.DefaultServerRate
			}
		})
	}
}

// TestFreshAddressFloodKeepsItsQuarterWithNewcomerCredit: a flood from fresh
// addresses against an address served before that keeps flood batches waiting
// gets a quarter of the service, whatever mix of heavy batches (which give
// newcomers credit) and light ones (which use it) it sends: the light batches
// that go ahead are still charged to the new class.
func TestFreshAddressFloodKeepsItsQuarterWithNewcomerCredit(t *testing.T) {
	heavyOrLight := func(rng *rand.Rand) uint64 {
		if rng.Intn(2) == 0 {
			return params.MaxRequestsPerBatch
		}
		return 1 + uint64(rng.Intn(newcomerMaxCost))
	}
	tests := []struct {
		name string
		cost func(*rand.Rand) uint64
	}{
		{"flood batches of 16", fixedCost(params.MaxRequestsPerBatch)},
		{"light batches of 3", fixedCost(3)},
		{"half heavy, half light batches", heavyOrLight},
		{"random costs from 1 to 16", randomCost(params.MaxRequestsPerBatch)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			est := &simClient{name: "established", addr: net.ParseIP("192.0.2.1"), id: enode.ID{1},
				cost: fixedCost(params.MaxRequestsPerBatch), window: 4}
			flood := &simClient{name: "fresh addresses", randomAddr: true, randomID: true, cost: tt.cost, rate: 5000, start: time.Second}
			cfg := simConfig{rate: 1000, maxWait: params.TalkMaxWait, duration: 6 * time.Second, measureFrom: time.Second, seed: 5}
			runSim(t, cfg, []*simClient{est, flood})
			share := float64(flood.servedCost) / float64(flood.servedCost+est.servedCost)
			t.Logf("fresh addresses: share %.3f, sent %d, served %d; established: served %d, max wait %v", share, flood.sent, flood.served, est.served, est.maxWait)
			if math.Abs(share-0.25) > 0.02 {
				t.Errorf("the flood from fresh addresses got %.3f of the service, want a quarter", share)
			}
		})
	}
}

// TestNewcomersThroughTheFirstSecondsOfAFloodFromManyAddresses models the
// start of the node load test (node/flood_test.go), while the flood's own 33
// addresses are still new: 32 addresses keeping two flood batches waiting and
// one keeping sixteen, all from fresh IDs, pausing 5 ms or 40 ms (as for a
// discv5 handshake; a paused address comes back fresh) before refilling. A
// newcomer on its own address sends one light batch every 43 ms: none is
// dropped, and none waits much more than the flood batch in service.
func TestNewcomersThroughTheFirstSecondsOfAFloodFromManyAddresses(t *testing.T) {
	for _, pause := range []time.Duration{5 * time.Millisecond, 40 * time.Millisecond} {
		t.Run(fmt.Sprintf("flooders pausing %v", pause), func(t *testing.T) {
			var flood []*simClient
			for i := range 32 {
				flood = append(flood, &simClient{
					name: fmt.Sprintf("flood address %d", i), addr: net.IPv4(198, 51, 100, byte(10+i)), randomID: true,
					cost: fixedCost(params.MaxRequestsPerBatch), window: 2, resend: pause,
				})
			}
			flood = append(flood, &simClient{
				name: "flood of fresh IDs", addr: net.IPv4(198, 51, 100, 2), randomID: true,
				cost: fixedCost(params.MaxRequestsPerBatch), window: 16, resend: pause,
			})
			var newcomers []*simClient
			for i := range 60 {
				newcomers = append(newcomers, &simClient{
					name: fmt.Sprintf("newcomer %d", i), addr: net.IPv4(192, 0, 2, byte(101+i)), id: enode.ID{byte(i + 1)},
					cost: fixedCost(3), period: time.Hour, start: 5*time.Millisecond + time.Duration(i)*43*time.Millisecond,
				})
			}
			cfg := simConfig{rate: 1000, maxWait: params.TalkMaxWait, duration: 3 * time.Second, measureFrom: time.Second, seed: 4}
			runSim(t, cfg, append(flood, newcomers...))
			var maxWait time.Duration
			for _, c := range newcomers {
				if c.sent != 1 {
					t.Fatalf("%s sent %d batches", c.name, c.sent)
				}
				if c.dropped > 0 {
					t.Errorf("%s, sent at %v, was dropped", c.name, c.start)
				}
				if c.maxWait > 30*time.Millisecond {
					t.Errorf("%s, sent at %v, waited %v", c.name, c.start, c.maxWait)
				}
				maxWait = max(maxWait, c.maxWait)
			}
			t.Logf("%d newcomers, longest wait %v", len(newcomers), maxWait)
		})
	}
}

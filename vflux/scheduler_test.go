package vflux

import (
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

// simClient is one requester of a scheduler simulation: closed loop (keeps
// window requests waiting) or open loop (Poisson arrivals at rate per second).
type simClient struct {
	name       string
	addr       net.IP
	id         enode.ID
	randomAddr bool // every request from a fresh random IPv4 address
	randomID   bool // every request from a fresh random node ID
	cost       func(*rand.Rand) uint64
	window     int
	rate       float64
	period     time.Duration // if set: one request every period (from start)
	resend     time.Duration // closed loop: refill the window at most this often
	start      time.Duration // begins sending at this simulated time

	nextSend                     time.Duration // periodic senders
	pending                      int
	sent, served, dropped, limbo int
	servedCost                   uint64 // within the measurement window
	maxWait                      time.Duration
	lastDrop                     time.Duration // arrival time of the newest dropped request
}

func fixedCost(c uint64) func(*rand.Rand) uint64 {
	return func(*rand.Rand) uint64 { return c }
}

func randomCost(max int) func(*rand.Rand) uint64 {
	return func(rng *rand.Rand) uint64 { return uint64(1 + rng.Intn(max)) }
}

type simConfig struct {
	rate        float64       // service rate, cost units per second
	maxWait     time.Duration // every request's wait bound
	duration    time.Duration
	measureFrom time.Duration // served cost counts from here
	seed        int64
}

type simRequest struct {
	client  *simClient
	arrival mclock.AbsTime
}

// runSim drives a scheduler on a simulated clock in steps of 100 us: arrivals,
// give-ups at the wait bound (what the blocking limiter's waiters do), then
// service while the rate allows (service itself takes no time).
func runSim(t *testing.T, cfg simConfig, clients []*simClient) {
	t.Helper()
	const step = 250 * time.Microsecond
	rng := rand.New(rand.NewSource(cfg.seed))
	clock := &mclock.Simulated{}
	s := newScheduler(cfg.rate, params.DefaultMaxQueuedCost, params.MaxWaiters)
	info := make(map[*request]simRequest)
	var fifo []*request // waiting requests in arrival order (deadlines are monotone)

	finish := func(r *request, served bool, now mclock.AbsTime) {
		sr := info[r]
		delete(info, r)
		c := sr.client
		c.pending--
		if !served {
			c.dropped++
			c.lastDrop = max(c.lastDrop, time.Duration(sr.arrival))
			return
		}
		c.served++
		if wait := time.Duration(now - sr.arrival); wait > c.maxWait {
			c.maxWait = wait
		}
		if time.Duration(now) >= cfg.measureFrom {
			c.servedCost += r.cost
		}
	}
	drain := func(now mclock.AbsTime) {
		for _, r := range s.dropped {
			finish(r, false, now)
		}
		s.dropped = s.dropped[:0]
	}
	send := func(c *simClient, now mclock.AbsTime) {
		r := &request{id: c.id, cost: c.cost(rng), deadline: now.Add(cfg.maxWait)}
		if c.randomID {
			rng.Read(r.id[:])
		}
		addr := c.addr
		if c.randomAddr {
			addr = net.IPv4(byte(1+rng.Intn(223)), byte(rng.Intn(256)), byte(rng.Intn(256)), byte(rng.Intn(256)))
		}
		r.group = groupKeyOf(addr)
		c.sent++
		c.pending++
		info[r] = simRequest{c, now}
		if s.tryStart(now, r.group, r.cost) {
			finish(r, true, now)
			s.done()
			return
		}
		s.enqueue(r)
		fifo = append(fifo, r)
		drain(now)
	}

	for now := mclock.AbsTime(0); time.Duration(now) < cfg.duration; now = clock.Now() {
		for _, c := range clients {
			if time.Duration(now) < c.start {
				continue
			}
			switch {
			case c.period > 0:
				if c.nextSend < c.start {
					c.nextSend = c.start
				}
				for ; c.nextSend <= time.Duration(now); c.nextSend += c.period {
					send(c, now)
				}
			case c.window > 0:
				// Refill the window, at most once per step (a request dropped at
				// once is resent in the next step) or per resend interval.
				if time.Duration(now) < c.nextSend {
					break
				}
				c.nextSend = time.Duration(now) + c.resend
				for n := c.window - c.pending; n > 0; n-- {
					send(c, now)
				}
			default:
				for n := poisson(rng, c.rate*step.Seconds()); n > 0; n-- {
					send(c, now)
				}
			}
		}
		for len(fifo) > 0 && fifo[0].deadline < now {
			if r := fifo[0]; s.remove(r) {
				finish(r, false, now)
			}
			fifo = fifo[1:]
		}
		for {
			r, _ := s.next(now)
			drain(now)
			if r == nil {
				break
			}
			finish(r, true, now)
			s.done()
		}
		clock.Run(step)
	}
	for _, sr := range info {
		sr.client.limbo++ // still waiting at the end
	}
}

// poisson samples a Poisson distribution with mean lambda (small lambda).
func poisson(rng *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// TestSchedulerSharesFollowAddressGroups: one node alone at an address and two
// nodes sharing another address, all asking for more than they can get, are
// served 1/2, 1/4 and 1/4 of the cost, whatever their request costs or rates.
func TestSchedulerSharesFollowAddressGroups(t *testing.T) {
	a, b := net.ParseIP("192.0.2.1"), net.ParseIP("198.51.100.1")
	tests := []struct {
		name    string
		clients [3]*simClient
	}{
		{"equal costs, each keeping four requests waiting", [3]*simClient{
			{addr: a, cost: fixedCost(1), window: 4},
			{addr: b, cost: fixedCost(1), window: 4},
			{addr: b, cost: fixedCost(1), window: 4},
		}},
		{"costs of 1, 16 and 4 per request", [3]*simClient{
			{addr: a, cost: fixedCost(1), window: 4},
			{addr: b, cost: fixedCost(16), window: 4},
			{addr: b, cost: fixedCost(4), window: 4},
		}},
		{"a costly node alone and cheap nodes sharing", [3]*simClient{
			{addr: a, cost: fixedCost(16), window: 2},
			{addr: b, cost: fixedCost(1), window: 8},
			{addr: b, cost: fixedCost(2), window: 8},
		}},
		{"open-loop floods and a single waiting request", [3]*simClient{
			{addr: a, cost: fixedCost(2), rate: 5000},
			{addr: b, cost: fixedCost(16), window: 1},
			{addr: b, cost: fixedCost(1), rate: 3000},
		}},
		{"random costs and mixed rates", [3]*simClient{
			{addr: a, cost: randomCost(16), rate: 2000},
			{addr: b, cost: randomCost(4), window: 3},
			{addr: b, cost: randomCost(16), rate: 800},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, c := range tt.clients {
				c.name = fmt.Sprintf("node %d", i)
				c.id = enode.ID{byte(i + 1)}
			}
			cfg := simConfig{rate: 1000, maxWait: params.TalkMaxWait, duration: 11 * time.Second, measureFrom: time.Second, seed: 1}
			runSim(t, cfg, tt.clients[:])
			var total uint64
			for _, c := range tt.clients {
				total += c.servedCost
			}
			if want := cfg.rate * (cfg.duration - cfg.measureFrom).Seconds(); math.Abs(float64(total)/want-1) > 0.02 {
				t.Errorf("served %d cost units, want %.0f (the service rate)", total, want)
			}
			for i, want := range []float64{0.5, 0.25, 0.25} {
				c := tt.clients[i]
				share := float64(c.servedCost) / float64(total)
				t.Logf("%s: share %.3f, served %d, dropped %d, max wait %v", c.name, share, c.served, c.dropped, c.maxWait)
				if math.Abs(share-want) > 0.03 {
					t.Errorf("%s got %.3f of the service, want %.2f", c.name, share, want)
				}
			}
		})
	}
}

// TestSchedulerFloods: three honest nodes, each at its own address and asking
// for less than a third of the service, keep getting everything they ask for
// (a third each, nothing dropped) while a flood arrives from one address with
// one ID, from one address with fresh IDs, or from fresh addresses; the flood
// itself is dropped.
func TestSchedulerFloods(t *testing.T) {
	floodAddr := net.ParseIP("203.0.113.66")
	tests := []struct {
		name  string
		flood *simClient
	}{
		{"a flood from one address with one ID", &simClient{addr: floodAddr, id: enode.ID{0xf1}, cost: randomCost(16), rate: 10000}},
		{"a flood from one address with fresh IDs", &simClient{addr: floodAddr, randomID: true, cost: randomCost(16), rate: 10000}},
		{"a flood from fresh addresses with one ID each", &simClient{randomAddr: true, randomID: true, cost: randomCost(16), rate: 10000}},
		{"a flood of cheap requests from fresh addresses", &simClient{randomAddr: true, randomID: true, cost: fixedCost(1), rate: 10000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var honest []*simClient
			for i := 0; i < 3; i++ {
				honest = append(honest, &simClient{
					name: fmt.Sprintf("honest %d", i),
					addr: net.IPv4(192, 0, 2, byte(10+i)),
					id:   enode.ID{byte(i + 1)},
					cost: randomCost(3), // 2 on average
					rate: 50,
				})
			}
			flood := tt.flood
			flood.name, flood.start = "flood", time.Second
			cfg := simConfig{rate: 1000, maxWait: params.TalkMaxWait, duration: 11 * time.Second, measureFrom: time.Second, seed: 2}
			runSim(t, cfg, append(honest, flood))

			var honestCost uint64
			for _, c := range honest {
				honestCost += c.servedCost
			}
			for _, c := range honest {
				share := float64(c.servedCost) / float64(honestCost)
				t.Logf("%s: sent %d, served %d, dropped %d, share %.3f, max wait %v", c.name, c.sent, c.served, c.dropped, share, c.maxWait)
				if c.dropped > 0 {
					t.Errorf("%s had %d requests dropped", c.name, c.dropped)
				}
				if c.maxWait > cfg.maxWait*7/10 {
					t.Errorf("%s waited up to %v, too close to the bound of %v", c.name, c.maxWait, cfg.maxWait)
				}
				if c.served+c.limbo != c.sent {
					t.Errorf("%s: sent %d, served %d", c.name, c.sent, c.served)
				}
				if math.Abs(share-1.0/3) > 0.04 {
					t.Errorf("%s got %.3f of the honest service, want a third", c.name, share)
				}
			}
			t.Logf("flood: sent %d, served %d, dropped %d", flood.sent, flood.served, flood.dropped)
			if flood.dropped < flood.sent/2 {
				t.Errorf("the flood lost only %d of %d requests", flood.dropped, flood.sent)
			}
			total := float64(honestCost + flood.servedCost)
			if want := cfg.rate * (cfg.duration - cfg.measureFrom).Seconds(); math.Abs(total/want-1) > 0.02 {
				t.Errorf("served %.0f cost units, want %.0f: the flood should use what the honest nodes leave", total, want)
			}
		})
	}
}

// TestSparseSendersAreServedThroughAFloodFromManyAddresses models the node
// load test (node/flood_test.go): 32 addresses each keeping two 16-request
// batches waiting from fresh node IDs, one more address keeping sixteen
// waiting from fresh IDs, all far over the rate of 1,000 requests/s, and
// three honest nodes on their own addresses sending one batch a second with
// the TALKREQ wait bound of 50 ms. The honest nodes use a tiny part of their
// fair share and were idle for a second before each batch, so each batch is
// served ahead of the flooders' standing backlogs and nothing of theirs is
// dropped, whether it is smaller than a flood batch or as big, and whether
// the flooders keep their backlogs standing or pause now and then (then they
// too are fresh at times, but each at most once a round); the flood takes the
// rest of the rate and is dropped. (Only while the flood's own addresses are
// still new, in its first two seconds, may an honest node's first batch of 16
// wait too long: newcomers share a quarter of the service. A first batch of 3
// is light and goes ahead of the flood's surcharge: none is dropped.)
func TestSparseSendersAreServedThroughAFloodFromManyAddresses(t *testing.T) {
	tests := []struct {
		name  string
		cost  uint64        // of an honest batch
		pause time.Duration // a flooder's pause before refilling its window
	}{
		{"honest batches of 3 requests (a capacity query with info and balance) against standing backlogs", 3, 5 * time.Millisecond},
		{"honest batches of 16 requests, as big as the flood's, against standing backlogs", params.MaxRequestsPerBatch, 5 * time.Millisecond},
		{"honest batches of 3 requests against flooders pausing 40 ms (as for discv5 handshakes)", 3, 40 * time.Millisecond},
		{"honest batches of 16 requests against flooders pausing 40 ms", params.MaxRequestsPerBatch, 40 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var flood []*simClient
			for i := range 32 {
				flood = append(flood, &simClient{
					name: fmt.Sprintf("flood address %d", i), addr: net.IPv4(198, 51, 100, byte(10+i)), randomID: true,
					cost: fixedCost(params.MaxRequestsPerBatch), window: 2, resend: tt.pause,
				})
			}
			flood = append(flood, &simClient{
				name: "flood of fresh IDs", addr: net.IPv4(198, 51, 100, 2), randomID: true,
				cost: fixedCost(params.MaxRequestsPerBatch), window: 16, resend: tt.pause,
			})
			var honest []*simClient
			for i := range 3 {
				honest = append(honest, &simClient{
					name: fmt.Sprintf("honest %d", i), addr: net.IPv4(192, 0, 2, byte(101+i)), id: enode.ID{byte(i + 1)},
					cost: fixedCost(tt.cost), period: time.Second, start: time.Second + time.Duration(i)*137*time.Millisecond,
				})
			}
			cfg := simConfig{rate: 1000, maxWait: params.TalkMaxWait, duration: 21 * time.Second, measureFrom: time.Second, seed: 4}
			runSim(t, cfg, append(flood, honest...))

			var sent, served int
			for _, c := range honest {
				t.Logf("%s: sent %d, served %d, dropped %d, max wait %v", c.name, c.sent, c.served, c.dropped, c.maxWait)
				sent += c.sent
				served += c.served + c.limbo
				if c.dropped > 0 && tt.cost <= newcomerMaxCost {
					t.Errorf("%s had %d light batches dropped, the last sent at %v", c.name, c.dropped, c.lastDrop)
				}
				if c.dropped > 0 && c.lastDrop >= 3*time.Second {
					t.Errorf("%s had a batch sent at %v dropped, after the flood's addresses were established", c.name, c.lastDrop)
				}
			}
			if sent < 57 {
				t.Fatalf("the honest nodes sent only %d batches", sent)
			}
			if frac := float64(served) / float64(sent); frac < 0.95 {
				t.Errorf("the honest nodes got %d of %d batches (%.0f%%) answered, want at least 95%%", served, sent, 100*frac)
			}
			var floodSent, floodDropped int
			var total uint64
			for _, c := range append(flood, honest...) {
				total += c.servedCost
			}
			for _, c := range flood {
				floodSent += c.sent
				floodDropped += c.dropped
			}
			t.Logf("flood: sent %d, dropped %d", floodSent, floodDropped)
			if floodDropped < floodSent/2 {
				t.Errorf("the flood lost only %d of %d batches", floodDropped, floodSent)
			}
			if want := cfg.rate * (cfg.duration - cfg.measureFrom).Seconds(); math.Abs(float64(total)/want-1) > 0.02 {
				t.Errorf("served %d cost units, want %.0f: the flood should use what the honest nodes leave", total, want)
			}
		})
	}
}

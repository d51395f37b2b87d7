package clientpool_test

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/vflux-net/vflux/clientpool"
)

// Fairness over a long simulated run (SPEC 1, 2.3): free clients take turns
// through their negative balances, priority clients get what they pay for.
//
// Setup (issue 2): minCap 1, limits (L, L), price factors {time 1/ns, capacity 0,
// request 1} for both balances, connected bias 3 minutes. The negative balance
// expires with an e-folding time of one hour (fairnessNegTC, the node's default,
// SPEC 9): a client's negative balance is then about its use of the last hour,
// which is the memory that makes free clients take turns. The positive balance
// never expires.
//
// Every tick the clock advances by fairnessTick and one client, picked at
// random, acts: an unconnected client connects (allowance 0: it is disconnected
// at once if it gets no slot); a connected one disconnects if the scenario says
// clients come and go. Evicted clients are unregistered after the tick. Active
// time is measured from the UpdateCapacity callbacks.
const (
	fairnessSeconds = 100000
	fairnessTick    = 4 * time.Second
	fairnessNegTC   = 3600 // seconds
	fairnessBias    = 3 * time.Minute
	fairnessSlack   = 0.2 // each free client within 20% of its fair share
)

type fairClient struct {
	index       int
	paid        bool
	peer        *testPeer
	active      bool
	activeSince mclock.AbsTime
	activeTime  time.Duration
	connSince   mclock.AbsTime
	wantedTime  time.Duration // time connected (paid clients want all of it active)
}

type fairnessSim struct {
	t        *testing.T
	pool     *clientpool.ClientPool
	clock    *mclock.Simulated
	clients  []*fairClient
	evicted  []*fairClient
	paidLost int // paid clients refused a slot or told to disconnect
}

func (s *fairnessSim) stopActive(c *fairClient) {
	if c.active {
		c.activeTime += time.Duration(s.clock.Now() - c.activeSince)
		c.active = false
	}
}

func (s *fairnessSim) connect(c *fairClient) {
	p := newTestPeer(testID(c.index), fmt.Sprintf("free-%d", c.index), 0, s.clock)
	p.onUpdate = func(p *testPeer, u capUpdate) {
		switch {
		case u.cap > 0 && !c.active:
			c.active, c.activeSince = true, s.clock.Now()
		case u.cap == 0:
			s.stopActive(c)
		}
	}
	p.onDisconnect = func(*testPeer) {
		if c.paid {
			s.paidLost++
		}
		s.stopActive(c)
		s.evicted = append(s.evicted, c)
	}
	c.peer, c.connSince = p, s.clock.Now()
	if !register(s.pool, p) {
		s.t.Fatalf("Register of client %d returned nil", c.index)
	}
	if c.paid && !c.active {
		s.paidLost++
	}
}

func (s *fairnessSim) disconnect(c *fairClient) {
	s.stopActive(c)
	if !c.peer.Disconnected() {
		c.wantedTime += time.Duration(s.clock.Now() - c.connSince)
	}
	unregister(s.pool, c.peer)
	c.peer = nil
}

func runFairness(t *testing.T, slots, clients, paid int, comeAndGo bool, seed int64) *fairnessSim {
	pool, clock := newSimPool(t, memorydb.New(), 1, fairnessBias)
	pool.SetExpirationTCs(0, fairnessNegTC)
	pool.SetLimits(uint64(slots), uint64(slots))
	pool.SetDefaultFactors(timeFactors, timeFactors)
	s := &fairnessSim{t: t, pool: pool, clock: clock}
	for i := 0; i < clients; i++ {
		c := &fairClient{index: i, paid: i < paid}
		if c.paid {
			// Enough for the whole run at 1 token/ns, with room to spare.
			addBalance(t, pool, testID(i), 2*fairnessSeconds*int64(time.Second))
		}
		s.clients = append(s.clients, c)
	}
	rng := rand.New(rand.NewSource(seed))
	for tick := 0; tick < int(fairnessSeconds*time.Second/fairnessTick); tick++ {
		clock.Run(fairnessTick)
		c := s.clients[rng.Intn(clients)]
		switch {
		case c.peer == nil:
			s.connect(c)
		case comeAndGo:
			s.disconnect(c)
		}
		for len(s.evicted) > 0 {
			e := s.evicted[0]
			s.evicted = s.evicted[1:]
			if e.peer != nil {
				s.disconnect(e)
			}
		}
	}
	for _, c := range s.clients {
		if c.peer != nil {
			s.disconnect(c)
		}
	}
	return s
}

func TestFairnessOverOneHundredThousandSeconds(t *testing.T) {
	tests := []struct {
		name           string
		slots, clients int
		paid           int
		comeAndGo      bool
		seed           int64
	}{
		{"ten slots are shared evenly by a hundred free clients that always want one", 10, 100, 0, false, 1},
		{"ten slots are shared evenly by a hundred free clients that come and go", 10, 100, 0, true, 2},
		{"four paid clients get all their time and ninety-six free clients share the rest", 10, 100, 4, false, 3},
		{"paid clients that come and go get all the time they ask for", 10, 100, 4, true, 4},
		{"twenty slots are shared evenly by forty free clients", 20, 40, 0, false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := runFairness(t, tt.slots, tt.clients, tt.paid, tt.comeAndGo, tt.seed)
			total := time.Duration(fairnessSeconds) * time.Second
			var paidActive, allActive time.Duration
			for _, c := range s.clients {
				allActive += c.activeTime
				if c.paid {
					paidActive += c.activeTime
					// A paid client is active whenever it is connected.
					if c.activeTime < c.wantedTime*999/1000 || c.wantedTime == 0 {
						t.Errorf("paid client %d was active %v of the %v it was connected", c.index, c.activeTime, c.wantedTime)
					}
				}
			}
			if s.paidLost > 0 {
				t.Errorf("paid clients were refused or evicted %d times", s.paidLost)
			}
			// The pool is always full (demand exceeds the slots), so the slots
			// were in use nearly all of the time.
			if capacityTime := time.Duration(tt.slots) * total; allActive < capacityTime*98/100 {
				t.Errorf("slots were used %v of %v", allActive, capacityTime)
			}
			fair := (time.Duration(tt.slots)*total - paidActive) / time.Duration(tt.clients-tt.paid)
			var min, max time.Duration = total, 0
			for _, c := range s.clients {
				if c.paid {
					continue
				}
				if c.activeTime < min {
					min = c.activeTime
				}
				if c.activeTime > max {
					max = c.activeTime
				}
				if !within(float64(c.activeTime), float64(fair), fairnessSlack) {
					t.Errorf("free client %d was active %v, fair share %v (±%.0f%%)", c.index, c.activeTime, fair, fairnessSlack*100)
				}
			}
			t.Logf("fair share %v, free clients got %v..%v, paid clients %v in all", fair, min, max, paidActive)
		})
	}
}

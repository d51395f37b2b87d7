package clientpool_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

// A raise grants only what the client holds afterwards, and the capacity
// query answers what the raise grants.

// A raise is granted only at a capacity the client holds against the waiting
// clients too, not only against the clients it cuts: otherwise a waiting
// client that out-ranks it at the new capacity is activated by the next
// change (here the nested Unregister of a client the raise evicted, from
// inside its Disconnect) and cuts the raise back before SetCapacity returns,
// and the caller is told a capacity the peer does not end up with.
//
// X (1e6 tokens) holds 10 next to two free clients F1 and F2 (debt 1e9); W
// (free, debt 2e9) waits: it out-ranks nobody. X asks for 90, which evicts F1
// (allowance 0: told to disconnect, and it unregisters at once); the nested
// activation that follows finds W still out-ranked by F2, and X keeps 90.
func TestARaiseHoldsAgainstTheWaitingClients(t *testing.T) {
	tests := []struct {
		name      string
		reentrant bool // F1 unregisters from inside Disconnect
	}{
		{"with an evicted client unregistering from inside Disconnect the peer keeps what SetCapacity returned", true},
		{"with an evicted client unregistering later the peer keeps what SetCapacity returned", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, clock := newSimPool(t, memorydb.New(), 10, 0)
			pool.SetLimits(3, 100)
			var vlog violationLog
			peer := loggedPeers(&vlog, clock)
			x, f1, f2, w := peer(1, time.Hour), peer(2, 0), peer(3, 0), peer(4, time.Hour)
			if tt.reentrant {
				f1.onDisconnect = func(p *testPeer) { unregister(pool, p) }
			}
			setBalance(t, pool, x.node.ID(), x.freeID, 1e6, 1e9)
			setBalance(t, pool, f1.node.ID(), f1.freeID, 0, 1e9)
			setBalance(t, pool, f2.node.ID(), f2.freeID, 0, 1e9)
			setBalance(t, pool, w.node.ID(), w.freeID, 0, 2e9)
			for _, p := range []*testPeer{x, f1, f2, w} {
				register(pool, p)
			}
			if x.Capacity() != 10 || f1.Capacity() != 10 || f2.Capacity() != 10 || w.Capacity() != 0 {
				t.Fatalf("setup: X %d, F1 %d, F2 %d, W %d; want 10, 10, 10 and W waiting",
					x.Capacity(), f1.Capacity(), f2.Capacity(), w.Capacity())
			}
			got, err := pool.SetCapacity(x.node, 90, 0, true)
			if err != nil || got < 10 || got > 90 {
				t.Fatalf("SetCapacity(X, 90) = %d, %v; want a grant in [10, 90]", got, err)
			}
			if x.Capacity() != got {
				t.Errorf("SetCapacity(X, 90) returned %d but the peer was told %d (updates %v)", got, x.Capacity(), x.Updates())
			}
			if got != 90 || f1.Capacity() != 0 || f2.Capacity() != 10 {
				t.Errorf("SetCapacity(X, 90) = %d, F1 holds %d, F2 %d; want 90 in place of F1", got, f1.Capacity(), f2.Capacity())
			}
			// A later call that runs the activation again does not undo it either.
			pool.SetConnectedBias(0)
			if x.Capacity() != got || w.Capacity() != 0 {
				t.Errorf("after later calls X has %d (granted %d), W %d", x.Capacity(), got, w.Capacity())
			}
			count, capacity := pool.Active()
			var told, n uint64
			for _, p := range []*testPeer{x, f1, f2, w} {
				if c := p.Capacity(); c > 0 && !p.Disconnected() {
					told += c
					n++
				}
			}
			if count != n || capacity != told {
				t.Errorf("Active() = (%d, %d), peers were told %d clients with %d", count, capacity, n, told)
			}
			if v := vlog.all(); len(v) > 0 {
				t.Errorf("callback contract broken:\n  %s", strings.Join(v, "\n  "))
			}
		})
	}
}

// A raise into free capacity of a pool full by count keeps its priority at
// least that of the best waiting client, evaluated with the bias: else that
// client would be activated by the next change, evicting the raised one.
//
// X, F1 and F2 (1e6 tokens each) hold 10 of 200 in three of three slots; W
// (5e5) waits: at minCap its biased estimate 49999 does not beat their 1e5.
// X asks for 90, all free: at 90 its priority 11111 is below W's, so X gets
// the most it keeps W out with, 20 (priority 5e4).
func TestARaiseIntoFreeCapacityHoldsAgainstTheBestWaitingClient(t *testing.T) {
	pool, _ := newSimPool(t, memorydb.New(), 10, 0)
	pool.SetLimits(3, 200)
	var vlog violationLog
	peer := loggedPeers(&vlog, nil)
	x, f1, f2, w := peer(1, time.Hour), peer(2, time.Hour), peer(3, time.Hour), peer(4, time.Hour)
	for _, p := range []*testPeer{x, f1, f2} {
		setBalance(t, pool, p.node.ID(), p.freeID, 1e6, 0)
	}
	setBalance(t, pool, w.node.ID(), w.freeID, 5e5, 0)
	for _, p := range []*testPeer{x, f1, f2, w} {
		register(pool, p)
	}
	if x.Capacity() != 10 || f1.Capacity() != 10 || f2.Capacity() != 10 || w.Capacity() != 0 {
		t.Fatalf("setup: X %d, F1 %d, F2 %d, W %d; want 10, 10, 10 and W waiting",
			x.Capacity(), f1.Capacity(), f2.Capacity(), w.Capacity())
	}
	if got, err := pool.SetCapacity(x.node, 90, 0, true); got != 20 || err != nil {
		t.Fatalf("SetCapacity(X, 90) = %d, %v; want 20, the most X holds while out-ranking W", got, err)
	}
	pool.SetConnectedBias(0) // runs the activation again
	if x.Capacity() != 20 || w.Capacity() != 0 {
		t.Errorf("after a later activation X holds %d, W %d; want 20 and W waiting", x.Capacity(), w.Capacity())
	}
	if v := vlog.all(); len(v) > 0 {
		t.Errorf("callback contract broken:\n  %s", strings.Join(v, "\n  "))
	}
}

// In a pool full by count, a newcomer gets capacity in two calls: Register
// evicts the lowest client for its slot, at minCap, then SetCapacity raises it,
// beating only the clients it cuts then; the evicted client, waiting, comes
// back unless the newcomer out-ranks it at the capacity it holds. The capacity
// query answers exactly what those two calls grant.
//
// Y (1e6 tokens) holds 1 and Z (1e9) holds 50 of 100, two of two slots. X
// (2e7) asks: at 20 its priority 1e6 keeps out Y (biased estimate 999999),
// at 21 it would not: the answer is 20, and Register then SetCapacity(50)
// grants 20.
func TestACapacityQueryOfANewcomerInAPoolFullByCountAgreesWithRegisterAndSetCapacity(t *testing.T) {
	tests := []struct {
		name string
		ask  func(answer uint64) uint64
	}{
		{"asking the answered capacity is granted in full", func(a uint64) uint64 { return a }},
		{"asking 10% more is granted the answer", func(a uint64) uint64 { return a + (a+9)/10 }},
		{"asking for all the free capacity is granted the answer", func(uint64) uint64 { return 50 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, _ := newSimPool(t, memorydb.New(), 1, 0)
			pool.SetLimits(2, 100)
			y, z, x := newTestPeer(testID(1), "10.0.0.1", time.Hour, nil), newTestPeer(testID(2), "10.0.0.2", time.Hour, nil),
				newTestPeer(testID(3), "10.0.0.3", time.Hour, nil)
			setBalance(t, pool, y.node.ID(), y.freeID, 1e6, 0)
			setBalance(t, pool, z.node.ID(), z.freeID, 1e9, 0)
			setBalance(t, pool, x.node.ID(), x.freeID, 2e7, 0)
			register(pool, y)
			register(pool, z)
			if got, err := pool.SetCapacity(z.node, 50, 0, true); got != 50 || err != nil || y.Capacity() != 1 {
				t.Fatalf("setup: SetCapacity(Z, 50) = %d, %v; Y holds %d", got, err, y.Capacity())
			}
			reply := capQuery(pool, x.node.ID(), x.freeID, 0, 0)
			if len(reply) != 1 || reply[0] != 20 {
				t.Fatalf("cq answered %v to the newcomer, want [20]", reply)
			}
			answer := reply[0]
			if !register(pool, x) || x.Capacity() != 1 || y.Capacity() != 0 {
				t.Fatalf("Register(X): X holds %d, Y %d; want X admitted at 1 in place of Y", x.Capacity(), y.Capacity())
			}
			req := tt.ask(answer)
			if got, err := pool.SetCapacity(x.node, req, 0, true); got != answer || err != nil {
				t.Errorf("SetCapacity(X, %d) = %d, %v after cq answered %d", req, got, err, answer)
			}
			pool.SetConnectedBias(0) // lets Y compete again
			if x.Capacity() != answer || y.Capacity() != 0 {
				t.Errorf("X holds %d (answered %d), Y %d: Y came back", x.Capacity(), answer, y.Capacity())
			}
		})
	}
}

package clientpool_test

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/vflux-net/vflux/clientpool"
)

// Regression tests for bugs the randomized property test found (see
// property_test.go); the property test and the fuzz seeds check each of them
// strictly too.

// countingClock is a simulated clock that counts the timers armed on it, so a
// test can see a timer that re-arms itself without end.
type countingClock struct {
	*mclock.Simulated
	armed atomic.Int64
}

func (c *countingClock) AfterFunc(d time.Duration, f func()) mclock.Timer {
	c.armed.Add(1)
	return c.Simulated.AfterFunc(d, f)
}

// Bug: the threshold timer of an active free client fires when its priority,
// -neg, falls to its ordering key. A negative balance at MaxInt64 cannot grow
// (it saturates), but the float difference between the key and the balance
// read 0, so the timer was re-armed every params.MinTimerDelay, forever.
func TestASaturatedNegativeBalanceDoesNotSpinTheThresholdTimer(t *testing.T) {
	tests := []struct {
		name string
		neg  uint64
	}{
		{"a negative balance of exactly MaxInt64 arms no timer", math.MaxInt64},
		{"a negative balance that saturates within a second arms no timer", math.MaxInt64 - 5e8},
		{"a negative balance one token below MaxInt64 arms no timer", math.MaxInt64 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &countingClock{Simulated: new(mclock.Simulated)}
			pool := clientpool.NewClientPool(memorydb.New(), 1, 0, clock, alwaysSynced)
			pool.Start()
			t.Cleanup(pool.Stop)
			pool.SetLimits(10, 10)
			// one token per ns of free service goes to the negative balance
			pool.SetDefaultFactors(clientpool.PriceFactors{}, clientpool.PriceFactors{TimeFactor: 1})
			p := newTestPeer(testID(1), "10.0.0.1", time.Hour, clock)
			setBalance(t, pool, p.node.ID(), p.freeID, 0, tt.neg)
			if !register(pool, p) || p.Capacity() != 1 {
				t.Fatalf("the only client was not activated: capacity %d", p.Capacity())
			}
			before := clock.armed.Load()
			for i := 0; i < 1000; i++ { // 10 s in steps of 10 ms
				clock.Run(10 * time.Millisecond)
			}
			if armed := clock.armed.Load() - before; armed > 1 {
				t.Errorf("%d timers armed in 10 s for a client whose priority cannot fall any more", armed)
			}
			if _, neg := p.Balance().GetBalance(); neg != math.MaxInt64 {
				t.Errorf("negative balance %d after 10 s of service, want MaxInt64", neg)
			}
			if p.Capacity() != 1 {
				t.Errorf("client capacity %d, want 1 (still active)", p.Capacity())
			}
		})
	}
}

// Bug: only active clients had threshold timers, so a waiting priority client
// whose positive balance decayed away was noticed by the next persistence
// pass (every minute): its inactive allowance started up to a minute late.
func TestAWaitingClientWhoseBalanceDecaysAwayStartsItsAllowanceAtOnce(t *testing.T) {
	const allowance = 10 * time.Second
	tests := []struct {
		name    string
		balance uint64
	}{
		// With a 5 s time constant, v reads 0 after 5 s * ln(2v).
		{"a balance that decays away between two persistence passes", 3.6e10}, // ~125 s
		{"a balance that decays away just after a persistence pass", 1.7e10},  // ~121 s
		{"a balance that decays away within the first minute", 1e5},           // ~61 s
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, clock := newSimPool(t, memorydb.New(), 1, 0)
			pool.SetLimits(0, 0) // nobody is served: every client waits
			pool.SetExpirationTCs(5, 0)
			p := newTestPeer(testID(1), "10.0.0.1", allowance, clock)
			setBalance(t, pool, p.node.ID(), p.freeID, tt.balance, 0)
			if !register(pool, p) || p.Capacity() != 0 || p.Disconnected() {
				t.Fatalf("a priority client should wait: capacity %d, disconnected %v", p.Capacity(), p.Disconnected())
			}
			var lost, gone mclock.AbsTime
			for i := 0; i < 300 && gone == 0; i++ {
				clock.Run(time.Second)
				if pos, _ := p.Balance().GetBalance(); pos == 0 && lost == 0 {
					lost = clock.Now()
				}
				if p.Disconnected() {
					gone = clock.Now()
				}
			}
			if lost == 0 || gone == 0 {
				t.Fatalf("balance read 0 at %v, client disconnected at %v: want both within 300 s", time.Duration(lost), time.Duration(gone))
			}
			// Timers of a 1 s Run window fire at its end: one window of slack.
			if waited := time.Duration(gone - lost); waited < allowance-time.Second || waited > allowance+time.Second {
				t.Errorf("disconnected %v after the balance read 0, want its allowance %v (balance gone at %v)",
					waited, allowance, time.Duration(lost))
			}
		})
	}
}

// Bug: a raise was checked only against the clients it cuts. A waiting client
// blocked by the requester at its old capacity could out-rank it at the new
// one; the nested Unregister of a client the raise evicted (from inside its
// Disconnect) then activated the waiting client, which cut the raise back
// before SetCapacity returned: the caller was told a capacity the peer did not
// end up with.
//
// X (1e6 tokens, spending fast, so it is ordered lowest) holds 10 next to two
// free clients; W (5e5 tokens) waits: at minCap its priority 5e4 does not beat
// X's 1e5 at 10. X asks for 90, which would evict free F1 (allowance 0: told to
// disconnect, and it unregisters at once). At 90, X's priority 11111 is below
// W's, so 90 is not held; X gets the most it keeps W out with: 20 (priority
// 5e4 against W's biased estimate 49999).
func TestARaiseIsNotUndoneByAnActivationInTheSameCall(t *testing.T) {
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
			setBalance(t, pool, w.node.ID(), w.freeID, 5e5, 0)
			for _, p := range []*testPeer{x, f1, f2} {
				register(pool, p)
			}
			// X spends 0.1 token per ns, then owes 1 per ns: lowest key.
			x.Balance().SetPriceFactors(clientpool.PriceFactors{TimeFactor: 0.1}, clientpool.PriceFactors{TimeFactor: 1})
			register(pool, w)
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
			if got != 20 {
				t.Errorf("SetCapacity(X, 90) = %d, want 20: the most X holds while out-ranking W", got)
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

// Bug: in a pool full by count, a newcomer gets capacity in two calls:
// Register evicts the lowest client for its slot, at minCap, then SetCapacity
// raises it, beating only the clients it cuts then. The capacity query made
// the whole answer beat the evicted client, so the raise got more than it
// answered; and the evicted client, waiting, comes back unless the newcomer
// out-ranks it at the capacity it holds.
//
// Y (1e6 tokens) holds 1 and Z (1e9) holds 50 of 100, two of two slots. X
// (2e7) asks: at 20 its priority 1e6 keeps out Y (biased estimate 999999),
// at 21 it would not. The query used to answer 19 (beating Y's 1e6 at 19),
// and Register then SetCapacity(50) granted 50, which Y then cut back.
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

// Regression test for a bug the property test found (seed 4): a peer callback
// that calls back into the pool (Unregister from Disconnect) had its nested
// callbacks delivered ahead of the rest of the outer batch, so a client the
// nested call re-activated was then told the outer batch's stale capacity 0:
// the peer believed it was inactive while the pool counted it active.
func TestReentrantUnregisterLeavesNoStaleCapacity(t *testing.T) {
	pool, _ := newSimPool(t, memorydb.New(), 10, 0)
	pool.SetLimits(10, 120)
	var vlog violationLog
	peer := loggedPeers(&vlog, nil)
	paidQ, freeY, freeX, paidP := peer(1, time.Hour), peer(2, 0), peer(3, time.Hour), peer(4, time.Hour)
	freeY.onDisconnect = func(p *testPeer) { unregister(pool, p) } // re-entrant
	addBalance(t, pool, paidQ.node.ID(), 1e12)
	addBalance(t, pool, paidP.node.ID(), 1e15)
	setBalance(t, pool, freeY.node.ID(), freeY.freeID, 0, 5e9) // Y ranks below X
	for _, p := range []*testPeer{paidQ, freeY, freeX, paidP} {
		if !register(pool, p) || p.Capacity() != 10 {
			t.Fatalf("client %x not activated at minCap", p.node.ID().Bytes()[28:])
		}
	}
	if got, err := pool.SetCapacity(paidQ.node, 80, 0, true); got != 80 || err != nil {
		t.Fatalf("SetCapacity(Q, 80) = %d, %v", got, err)
	}
	// P's raise to 45 takes 25 more than the 120 there are: the plan
	// deactivates Y (disconnected at once, and unregistered from inside
	// Disconnect), then X, then cuts Q by a quarter (80 to 60), which leaves 15
	// free: the nested Unregister of Y re-activates X at minCap.
	if got, err := pool.SetCapacity(paidP.node, 45, 0, true); got != 45 || err != nil {
		t.Fatalf("SetCapacity(P, 45) = %d, %v", got, err)
	}
	count, capacity := pool.Active()
	var told, toldCount uint64
	for _, p := range []*testPeer{paidQ, freeX, paidP} {
		if c := p.Capacity(); c > 0 {
			told += c
			toldCount++
		}
	}
	if count != toldCount || capacity != told {
		t.Errorf("Active() = (%d, %d), peers were told %d clients with %d: Q %v, X %v, P %v",
			count, capacity, toldCount, told, paidQ.Updates(), freeX.Updates(), paidP.Updates())
	}
	if !freeY.Disconnected() {
		t.Errorf("Y was not disconnected (updates %v)", freeY.Updates())
	}
	if v := vlog.all(); len(v) > 0 {
		t.Errorf("callback contract broken:\n  %s", strings.Join(v, "\n  "))
	}
}

// loggedPeers returns a constructor of test peers (ID i, free ID 10.0.0.i)
// that record their capacity violations in vlog.
func loggedPeers(vlog *violationLog, clock mclock.Clock) func(i int, allowance time.Duration) *testPeer {
	return func(i int, allowance time.Duration) *testPeer {
		p := newTestPeer(testID(i), fmt.Sprintf("10.0.0.%d", i), allowance, clock)
		p.log = vlog
		return p
	}
}

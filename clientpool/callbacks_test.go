package clientpool

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

func TestCallbacksRunAfterTheLockIsReleasedAndBeforeTheCallReturns(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	p := newPeer(0, time.Hour)
	var seen []uint64
	p.onUpdate = func(_ *peer, c uint64) {
		// Calling into the pool would deadlock if the lock were held, and the
		// pool's state already includes the change.
		_, capacity := pool.Active()
		seen = append(seen, c, capacity)
	}
	pool.Register(p)
	if !reflect.DeepEqual(seen, []uint64{1, 1}) {
		t.Fatalf("callback saw (capacity, pool capacity) %v before Register returned, want [1 1]", seen)
	}
}

func TestCallbacksRunInDecisionOrder(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	log := new(callLog)
	incumbent, newcomer := newPeer(0, 0), newPeer(1, 0)
	incumbent.log, newcomer.log = log, log
	pool.Register(incumbent)
	clock.Run(10 * time.Minute)
	pool.Register(newcomer)
	want := []string{
		"update " + incumbent.node.ID().TerminalString(),     // activated
		"update " + incumbent.node.ID().TerminalString(),     // cut to 0 when evicted
		"disconnect " + incumbent.node.ID().TerminalString(), // allowance 0
		"update " + newcomer.node.ID().TerminalString(),      // activated
	}
	if got := log.all(); !reflect.DeepEqual(got, want) {
		t.Fatalf("callbacks %q, want %q", got, want)
	}
}

func TestDisconnectCallbackMayUnregisterReentrantly(t *testing.T) {
	clock := &mclock.Simulated{}
	db := newTestDB()
	pool := newTestPool(t, db, clock, 1, 1)
	incumbent, newcomer := newPeer(0, 0), newPeer(1, 0)
	incumbent.onDisconnect = func(p *peer) { pool.Unregister(p) }
	pool.Register(incumbent)
	clock.Run(10 * time.Minute)
	pool.Register(newcomer) // evicts the incumbent, whose Disconnect unregisters it
	if !incumbent.wasDisconnected() {
		t.Fatal("incumbent not evicted")
	}
	if pool.Register(incumbent) == nil {
		t.Fatal("incumbent still registered after its re-entrant Unregister")
	}
	// Unregister persisted the incumbent's negative balance (10 minutes at 1/ns).
	writtenNow(pool)
	if v, ok := storedValue(t, db, negKey(incumbent.freeID)); !ok || v.Value(0) != uint64(10*time.Minute) {
		t.Fatalf("evicted client's negative balance stored as %v, want 600e9", v.Value(0))
	}
}

func TestTimerCallbacksRunInsideSimulatedRun(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 10)
	p := newPeer(0, time.Hour)
	addBalance(pool, p.node.ID(), int64(10*time.Second))
	pool.Register(p)
	pool.SetCapacity(p.node, 10, 0, false)
	var mu sync.Mutex
	inRun := false
	var calledInRun []bool
	p.onUpdate = func(_ *peer, c uint64) {
		mu.Lock()
		calledInRun = append(calledInRun, inRun)
		mu.Unlock()
	}
	mu.Lock()
	inRun = true
	mu.Unlock()
	clock.Run(11 * time.Second)
	mu.Lock()
	inRun = false
	defer mu.Unlock()
	if !reflect.DeepEqual(calledInRun, []bool{true}) || p.capacity() != 1 {
		t.Fatalf("balance exhaustion callbacks %v (capacity %d), want one inside Run", calledInRun, p.capacity())
	}
}

func TestThresholdTimerKeepsFiringAfterItFiredOnce(t *testing.T) {
	// Fix: the original timer could not be re-armed after it fired once, so
	// later thresholds came late or never. A paid client at capacity 10 is
	// re-ordered every PriorityHorizon and still cut to minCap on time.
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 10)
	p := newPeer(0, time.Hour)
	addBalance(pool, p.node.ID(), int64(45*time.Second))
	pool.Register(p)
	pool.SetCapacity(p.node, 10, 0, false)
	for i := 1; i <= 44; i++ {
		clock.Run(time.Second)
		if p.capacity() != 10 {
			t.Fatalf("cut after %d s, before the balance ran out", i)
		}
	}
	clock.Run(time.Second + 2*time.Millisecond)
	if p.capacity() != 1 {
		t.Fatalf("not cut to minCap when the balance ran out after 45 s")
	}
}

func TestWaitingClientReplacesAnIncumbentWhenItsPriorityFallsBelow(t *testing.T) {
	// No call into the pool happens: only the incumbent's timer can notice that
	// a waiting paid client now out-ranks it.
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	incumbent, waiting := newPeer(0, time.Hour), newPeer(1, time.Hour)
	addBalance(pool, incumbent.node.ID(), int64(300*time.Second))
	addBalance(pool, waiting.node.ID(), int64(250*time.Second))
	pool.Register(incumbent)
	pool.Register(waiting)
	if waiting.capacity() != 0 {
		t.Fatal("waiting client admitted at once")
	}
	// waiting's biased priority is 250-180 = 70 s; the incumbent falls to 70 s
	// of balance after 230 s.
	clock.Run(225 * time.Second)
	if waiting.capacity() != 0 {
		t.Fatal("waiting client admitted too early")
	}
	for i := 0; i < 20 && waiting.capacity() == 0; i++ {
		clock.Run(time.Second)
	}
	if waiting.capacity() != 1 || incumbent.capacity() != 0 {
		t.Fatalf("waiting client not admitted when the incumbent's priority fell below it")
	}
	if now := time.Duration(clock.Now()); now > 241*time.Second {
		t.Fatalf("admitted only after %v, want about 230 s", now)
	}
}

func TestACapacityUpdateReachesThePeerBeforeTheCallThatCausedItReturns(t *testing.T) {
	// The capacity a call decides reaches the peer before the call returns,
	// even while another goroutine is delivering to the same client (SPEC
	// 3.2), so the protocol sends the CapacityUpdate before the
	// CapacityReply (SPEC 5). Goroutine 1 is held inside the peer's
	// UpdateCapacity while goroutine 2 raises the capacity.
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 100)
	a := newPeer(1, time.Hour)
	addBalance(pool, a.node.ID(), 1e15)
	pool.Register(a)
	if a.capacity() != 1 {
		t.Fatalf("setup: capacity %d", a.capacity())
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	a.onUpdate = func(_ *peer, c uint64) {
		if c == 10 && held.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	}
	waiting := make(chan struct{}, 1)
	testHookDeliveryWait = func(p *ClientPool) {
		if p == pool {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
	}
	defer func() { testHookDeliveryWait = nil }()

	g1 := make(chan struct{})
	go func() {
		defer close(g1)
		pool.SetCapacity(a.node, 10, 0, false)
	}()
	deadline := time.After(10 * time.Second)
	select {
	case <-entered:
	case <-deadline:
		t.Fatal("goroutine 1 never delivered capacity 10")
	}
	type result struct {
		got     uint64
		err     error
		updates []uint64
		req     []bool
	}
	g2 := make(chan result, 1)
	go func() {
		got, err := pool.SetCapacity(a.node, 20, 0, true)
		a.mu.Lock()
		r := result{got, err, append([]uint64(nil), a.updates...), append([]bool(nil), a.requested...)}
		a.mu.Unlock()
		g2 <- r
	}()
	select {
	case <-waiting: // goroutine 2 waits for goroutine 1's delivery
	case r := <-g2:
		close(release)
		t.Fatalf("SetCapacity(20) = %d, %v returned while another goroutine was delivering; the peer had been told %v", r.got, r.err, r.updates)
	case <-deadline:
		t.Fatal("goroutine 2 neither waited nor returned")
	}
	close(release)
	var r result
	select {
	case r = <-g2:
	case <-deadline:
		t.Fatal("SetCapacity(20) did not return after the other delivery ended")
	}
	<-g1
	if r.err != nil || r.got != 20 {
		t.Fatalf("SetCapacity(20) = %d, %v", r.got, r.err)
	}
	if n := len(r.updates); n == 0 || r.updates[n-1] != 20 || !r.req[n-1] {
		t.Fatalf("when SetCapacity(20) returned the peer had been told %v (requested %v); want 20, requested, last", r.updates, r.req)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if want := []uint64{1, 10, 20}; fmt.Sprint(a.updates) != fmt.Sprint(want) {
		t.Fatalf("peer told %v in the end, want %v", a.updates, want)
	}
}

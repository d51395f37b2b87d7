package clientpool_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/vflux-net/vflux/clientpool"
)

// Threshold timers on the real clock (SPEC 2.4): the pool must notice on its own,
// without any other call, when a client's positive balance runs out, and it must
// notice again after a top-up (the original's timer never re-armed).

const (
	exhaustBalance  = 2e9 // 2 s at 1 token/ns
	exhaustMin      = 1500 * time.Millisecond
	exhaustMax      = 4 * time.Second
	exhaustDeadline = 10 * time.Second // give up waiting; a failure, not a skip
)

// exhaustionFixture is a pool on mclock.System with one paid client at raised
// capacity, whose UpdateCapacity calls and pool events arrive on channels.
type exhaustionFixture struct {
	t       *testing.T
	pool    *clientpool.ClientPool
	peer    *testPeer
	updates chan capUpdate
	events  chan clientpool.Event
}

func newExhaustionFixture(t *testing.T) *exhaustionFixture {
	pool := clientpool.NewClientPool(memorydb.New(), 1, 0, mclock.System{}, alwaysSynced)
	pool.Start()
	t.Cleanup(pool.Stop)
	pool.SetLimits(1, 10)
	pool.SetDefaultFactors(timeFactors, timeFactors)
	f := &exhaustionFixture{
		t:       t,
		pool:    pool,
		updates: make(chan capUpdate, 100),
		events:  make(chan clientpool.Event, 100),
	}
	sub := pool.SubscribeEvents(f.events)
	t.Cleanup(sub.Unsubscribe)
	f.peer = newTestPeer(testID(1), "10.0.0.1", time.Hour, mclock.System{})
	f.peer.onUpdate = func(_ *testPeer, u capUpdate) {
		select {
		case f.updates <- u:
		default:
			t.Error("update channel full")
		}
	}
	return f
}

// raise asks for capacity 4 and checks it is granted.
func (f *exhaustionFixture) raise() {
	f.t.Helper()
	if got, err := f.pool.SetCapacity(f.peer.node, 4, 0, true); got != 4 || err != nil {
		f.t.Fatalf("SetCapacity(4) = %d, %v; want 4, nil", got, err)
	}
	f.expectUpdate(4, time.Second)
}

// expectUpdate waits for the next UpdateCapacity call and checks its capacity.
func (f *exhaustionFixture) expectUpdate(want uint64, deadline time.Duration) {
	f.t.Helper()
	select {
	case u := <-f.updates:
		if u.cap != want {
			f.t.Fatalf("UpdateCapacity(%d), want %d", u.cap, want)
		}
	case <-time.After(deadline):
		f.t.Fatalf("no UpdateCapacity(%d) within %v", want, deadline)
	}
}

// expectExhaustion waits for the cut to minCap and checks when it came, then for
// the EventBalanceExhausted of the client on the event feed.
func (f *exhaustionFixture) expectExhaustion(since time.Time) {
	f.t.Helper()
	f.expectUpdate(1, exhaustDeadline)
	if elapsed := time.Since(since); elapsed < exhaustMin || elapsed > exhaustMax {
		f.t.Errorf("2 s of balance ran out after %v, want between %v and %v", elapsed, exhaustMin, exhaustMax)
	}
	if pos, _ := f.peer.Balance().GetBalance(); pos != 0 {
		f.t.Errorf("positive balance %d after exhaustion, want 0", pos)
	}
	deadline := time.After(exhaustDeadline)
	for {
		select {
		case ev := <-f.events:
			if ev.Type == clientpool.EventBalanceExhausted && ev.ID == f.peer.node.ID() {
				return
			}
		case <-deadline:
			f.t.Fatalf("no EventBalanceExhausted within %v", exhaustDeadline)
		}
	}
}

// connectRaiseAndRunOut gives the peer 2 s of balance, registers it, raises
// its capacity and waits until the balance runs out.
func (f *exhaustionFixture) connectRaiseAndRunOut() {
	f.t.Helper()
	addBalance(f.t, f.pool, f.peer.node.ID(), exhaustBalance)
	start := time.Now()
	if !register(f.pool, f.peer) {
		f.t.Fatal("Register returned nil")
	}
	f.expectUpdate(1, time.Second)
	f.raise()
	f.expectExhaustion(start)
}

func TestThresholdTimersOnTheSystemClock(t *testing.T) {
	t.Run("a client with 2 s of balance loses priority after about 2 s without other activity", func(t *testing.T) {
		f := newExhaustionFixture(t)
		f.connectRaiseAndRunOut()
	})
	t.Run("the timer fires again after a top-up", func(t *testing.T) {
		f := newExhaustionFixture(t)
		f.connectRaiseAndRunOut()

		if _, err := f.pool.SetCapacity(f.peer.node, 4, 0, true); !errors.Is(err, clientpool.ErrNoPriority) {
			t.Fatalf("raise without balance: %v, want ErrNoPriority", err)
		}
		start := time.Now()
		addBalance(t, f.pool, f.peer.node.ID(), exhaustBalance)
		f.raise()
		f.expectExhaustion(start)
	})
}

// Regression test for a bug the fuzz target found: when a client's positive
// balance ran out inside a clock step, a client sharing its free-client ID
// whose timer was handled first re-keyed it and re-armed its threshold timer
// from the end of the step, so the exhaustion (due 1 ms in) was postponed past
// the step: the client kept its raised capacity with an empty balance.
func TestExhaustionIsNotPostponedByAClientSharingTheFreeID(t *testing.T) {
	pool, clock := newSimPool(t, memorydb.New(), 100, 0)
	pool.SetLimits(10, 1000)
	pool.SetDefaultFactors(clientpool.PriceFactors{TimeFactor: 1}, clientpool.PriceFactors{CapacityFactor: 1})
	sibling := newTestPeer(testID(1), "10.0.0.2", time.Hour, clock)
	paid := newTestPeer(testID(2), "10.0.0.2", time.Hour, clock)
	for _, p := range []*testPeer{sibling, paid} {
		if !register(pool, p) {
			t.Fatal("Register returned nil")
		}
		addBalance(t, pool, p.node.ID(), 1) // runs out after 1 ns
	}
	if got, err := pool.SetCapacity(paid.node, 324, 0, true); got != 324 || err != nil {
		t.Fatalf("SetCapacity(324) = %d, %v", got, err)
	}
	clock.Run(time.Second)
	if pos, _ := paid.Balance().GetBalance(); pos != 0 || paid.Capacity() != 100 {
		t.Errorf("after 1 s: balance %d, capacity %d; want 0 and minCap 100 (updates %v)", pos, paid.Capacity(), paid.Updates())
	}
}

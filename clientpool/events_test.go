package clientpool

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/vflux-net/vflux/params"
)

func nextEvent(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
		return Event{}
	}
}

func TestEventsDescribeAClientsLife(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 10)
	ch := subscribeEvents(t, pool, 100)

	p := newPeer(1, time.Hour)
	addBalance(pool, p.node.ID(), int64(10*time.Second))
	pool.Register(p)
	pool.SetCapacity(p.node, 4, 0, true)
	clock.Run(11 * time.Second)
	pool.Unregister(p)
	want := []struct {
		typ EventType
		cap uint64
		at  time.Duration
	}{
		{EventBalanceChanged, 0, 0},
		{EventConnected, 0, 0},
		{EventActivated, 1, 0},
		{EventCapacityChanged, 4, 0},
		{EventBalanceExhausted, 4, 11 * time.Second},
		{EventCapacityChanged, 1, 11 * time.Second},
		{EventDeactivated, 0, 11 * time.Second},
		{EventDisconnected, 0, 11 * time.Second},
	}
	for i, w := range want {
		ev := nextEvent(t, ch)
		if ev.Type != w.typ || ev.Capacity != w.cap || ev.ID != p.node.ID() || ev.Time != mclock.AbsTime(w.at) {
			t.Fatalf("event %d: %+v, want type %d capacity %d at %v", i, ev, w.typ, w.cap, w.at)
		}
	}
}

func TestSlowSubscriberLosesEventsWithoutBlockingThePool(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	slow := make(chan Event) // never read
	sub := pool.SubscribeEvents(slow)
	defer sub.Unsubscribe()
	fast := make(chan Event, 4)
	fastSub := pool.SubscribeEvents(fast)
	defer fastSub.Unsubscribe()

	n := params.EventQueueSize
	for i := 0; i < n; i++ { // 4 events each: connected, activated, deactivated, disconnected
		p := newPeer(i, time.Hour)
		pool.Register(p)
		pool.Unregister(p)
		for j := 0; j < 4; j++ {
			nextEvent(t, fast) // the fast subscriber is not held up by the slow one
		}
	}
	if d := pool.DroppedEvents(); d < uint64(2*n-2) {
		t.Fatalf("%d events dropped for a subscriber that reads nothing, want at least %d", d, 2*n-2)
	}
}

// subscribeEvents subscribes to pool's events with a channel of the given
// size, unsubscribed when the test ends.
func subscribeEvents(t testing.TB, pool *ClientPool, size int) <-chan Event {
	ch := make(chan Event, size)
	sub := pool.SubscribeEvents(ch)
	t.Cleanup(sub.Unsubscribe)
	return ch
}

package clientpool

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// eventsOf reads events from ch until one of type until for id arrives and
// returns id's events up to and including it; it fails the test after 5 s.
func eventsOf(t *testing.T, ch <-chan Event, id enode.ID, until EventType) []Event {
	t.Helper()
	var got []Event
	for {
		ev := nextEvent(t, ch)
		if ev.ID != id {
			continue
		}
		got = append(got, ev)
		if ev.Type == until {
			return got
		}
	}
}

// typesOf renders events as their types and reasons, for messages.
func typesOf(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = eventName(ev.Type) + "(" + string(ev.Reason) + ")"
	}
	return out
}

func eventName(t EventType) string {
	return map[EventType]string{
		EventConnected: "connected", EventActivated: "activated", EventCapacityChanged: "capacityChanged",
		EventDeactivated: "deactivated", EventDisconnected: "disconnected",
		EventBalanceExhausted: "balanceExhausted", EventBalanceChanged: "balanceChanged",
	}[t]
}

// reasonScenario drives a pool until client victim loses its capacity or its
// connection; the test then reads victim's events up to the event of type
// until and checks its reason.
type reasonScenario struct {
	name   string
	until  EventType
	reason Reason
	// run sets the scene; it returns the victim's ID. Events are subscribed
	// before it runs.
	run func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID
}

var reasonScenarios = []reasonScenario{
	{
		name: "a paid newcomer evicts a free client", until: EventDeactivated, reason: ReasonEvicted,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			free, paid := newPeer(1, time.Hour), newPeer(2, time.Hour)
			pool.Register(free)
			addBalance(pool, paid.node.ID(), int64(time.Hour))
			pool.Register(paid)
			return free.node.ID()
		},
	},
	{
		name: "a paid client's raise evicts a free client", until: EventDeactivated, reason: ReasonEvicted,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			pool.SetLimits(2, 2)
			free, paid := newPeer(1, time.Hour), newPeer(2, time.Hour)
			addBalance(pool, paid.node.ID(), int64(time.Hour))
			pool.Register(paid)
			pool.Register(free)
			if got, err := pool.SetCapacity(paid.node, 2, 0, true); got != 2 || err != nil {
				t.Fatalf("raise to 2: %d, %v", got, err)
			}
			return free.node.ID()
		},
	},
	{
		name: "a client whose balance ran out loses to a waiting one", until: EventDeactivated, reason: ReasonBalanceRanOut,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			pool.SetConnectedBias(0) // the waiting client, with no debt, out-ranks one with a second of debt
			paid, free := newPeer(1, time.Hour), newPeer(2, time.Hour)
			addBalance(pool, paid.node.ID(), int64(10*time.Second))
			pool.Register(paid)
			pool.Register(free)
			clock.Run(11 * time.Second)
			return paid.node.ID()
		},
	},
	{
		name: "lowered limits deactivate a client", until: EventDeactivated, reason: ReasonLimitsLowered,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			paid, free := newPeer(1, time.Hour), newPeer(2, time.Hour)
			pool.SetLimits(2, 2)
			addBalance(pool, paid.node.ID(), int64(time.Hour))
			pool.Register(paid)
			pool.Register(free)
			pool.SetLimits(1, 1) // the free client ranks lowest
			return free.node.ID()
		},
	},
	{
		name: "a waiting client's allowance ends", until: EventDisconnected, reason: ReasonAllowanceEnded,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			pool.Register(newPeer(1, time.Hour))
			waiting := newPeer(2, time.Minute)
			pool.Register(waiting)
			clock.Run(time.Minute)
			return waiting.node.ID()
		},
	},
	{
		name: "a client without allowance is dropped when it waits", until: EventDisconnected, reason: ReasonAllowanceEnded,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			pool.Register(newPeer(1, time.Hour))
			waiting := newPeer(2, 0)
			pool.Register(waiting)
			return waiting.node.ID()
		},
	},
	{
		name: "the lowest waiting client leaves when the waiting slots are full", until: EventDisconnected, reason: ReasonWaitingFull,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			pool.SetMaxInactive(1)
			pool.Register(newPeer(1, time.Hour))
			paid, free := newPeer(2, time.Hour), newPeer(3, time.Hour)
			addBalance(pool, paid.node.ID(), 1000) // out-ranks the free one while both wait
			pool.Register(free)
			pool.Register(paid) // two waiting, one slot
			return free.node.ID()
		},
	},
	{
		name: "a client beyond the per-address bound is refused", until: EventDisconnected, reason: ReasonTooManyFromAddress,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			pool.SetMaxPerFreeID(1)
			first, second := newPeer(1, time.Hour), newPeer(2, time.Hour)
			first.freeID, second.freeID = "10.0.0.1", "10.0.0.1"
			pool.Register(first)
			if pool.Register(second) != nil {
				t.Fatal("a second client of one address registered past SetMaxPerFreeID(1)")
			}
			if !second.wasDisconnected() {
				t.Fatal("the refused peer was not told to disconnect")
			}
			return second.node.ID()
		},
	},
	{
		name: "an active client leaves", until: EventDisconnected, reason: ReasonPeerLeft,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			p := newPeer(1, time.Hour)
			pool.Register(p)
			pool.Unregister(p)
			return p.node.ID()
		},
	},
	{
		name: "a waiting client leaves", until: EventDisconnected, reason: ReasonPeerLeft,
		run: func(t *testing.T, pool *ClientPool, clock *mclock.Simulated) enode.ID {
			pool.Register(newPeer(1, time.Hour))
			p := newPeer(2, time.Hour)
			pool.Register(p)
			pool.Unregister(p)
			return p.node.ID()
		},
	},
}

func TestEveryDeactivationAndDisconnectSaysWhy(t *testing.T) {
	for _, sc := range reasonScenarios {
		t.Run(sc.name, func(t *testing.T) {
			clock := &mclock.Simulated{}
			pool := newTestPool(t, nil, clock, 1, 1)
			ch := subscribeEvents(t, pool, 100)
			id := sc.run(t, pool, clock)
			evs := eventsOf(t, ch, id, sc.until)
			if got := evs[len(evs)-1].Reason; got != sc.reason {
				t.Fatalf("reason %q, want %q (events %v)", got, sc.reason, typesOf(evs))
			}
			for _, ev := range evs[:len(evs)-1] {
				switch ev.Type {
				case EventDeactivated, EventDisconnected:
					if ev.Reason == "" {
						t.Errorf("%s without a reason (events %v)", eventName(ev.Type), typesOf(evs))
					}
				default:
					if ev.Reason != "" {
						t.Errorf("%s with reason %q (events %v)", eventName(ev.Type), ev.Reason, typesOf(evs))
					}
				}
			}
		})
	}
}

func TestAnActiveClientIsDeactivatedBeforeItDisconnects(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	ch := subscribeEvents(t, pool, 100)
	p := newPeer(1, time.Hour)
	pool.Register(p)
	clock.Run(time.Second)
	pool.Unregister(p)
	evs := eventsOf(t, ch, p.node.ID(), EventDisconnected)
	want := []struct {
		typ    EventType
		reason Reason
	}{
		{EventConnected, ""},
		{EventActivated, ""},
		{EventDeactivated, ReasonPeerLeft},
		{EventDisconnected, ReasonPeerLeft},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %v, want connected, activated, deactivated, disconnected", typesOf(evs))
	}
	for i, w := range want {
		if evs[i].Type != w.typ || evs[i].Reason != w.reason {
			t.Fatalf("events %v, want connected, activated, deactivated(peer left), disconnected(peer left)", typesOf(evs))
		}
	}
	if evs[2].Capacity != 0 || evs[2].Time != mclock.AbsTime(time.Second) {
		t.Errorf("deactivated with capacity %d at %v, want 0 at 1s", evs[2].Capacity, time.Duration(evs[2].Time))
	}
}

func TestEventsCarryTheWallClockOfTheDecision(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	ch := subscribeEvents(t, pool, 100)
	before := time.Now()
	p := newPeer(1, time.Hour)
	pool.Register(p)
	after := time.Now()
	ev := nextEvent(t, ch)
	if ev.Wall.Before(before) || ev.Wall.After(after) {
		t.Fatalf("connected event stamped %v, want between %v and %v", ev.Wall, before, after)
	}
}

func TestTopUpsAreEvents(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	ch := subscribeEvents(t, pool, 100)

	// A waiting free client is topped up: the change comes first, then the
	// activation it causes.
	pool.Register(newPeer(1, time.Hour))
	waiting := newPeer(2, time.Hour)
	id := waiting.node.ID()
	pool.Register(waiting)
	if _, _, err := pool.AddBalance(id, waiting.freeID, int64(time.Hour)); err != nil {
		t.Fatal(err)
	}
	evs := eventsOf(t, ch, id, EventActivated)
	var changed *Event
	for i := range evs {
		if evs[i].Type == EventBalanceChanged {
			changed = &evs[i]
			if i != len(evs)-2 {
				t.Errorf("events %v, want balanceChanged just before activated", typesOf(evs))
			}
		}
	}
	if changed == nil || changed.OldBalance != 0 || changed.NewBalance != uint64(time.Hour) || changed.Capacity != 0 {
		t.Fatalf("events %v: want balanceChanged 0 -> 3600000000000 while inactive (got %+v)", typesOf(evs), changed)
	}

	// SetBalance inside BalanceOperation, on a client that is not connected.
	other := nodeID(9)
	pool.BalanceOperation(other, "", func(op AtomicBalanceOperator) {
		if err := op.SetBalance(700, 0); err != nil {
			t.Error(err)
		}
	})
	ev := eventsOf(t, ch, other, EventBalanceChanged)[0]
	if ev.OldBalance != 0 || ev.NewBalance != 700 {
		t.Fatalf("SetBalance event %+v, want 0 -> 700", ev)
	}

	// No change, no event: adding 0, and setting the same balance. The
	// removal after them is the next event of that ID.
	pool.AddBalance(other, "", 0)
	pool.BalanceOperation(other, "", func(op AtomicBalanceOperator) { op.SetBalance(700, 0) })
	pool.AddBalance(other, "", -1000)
	ev = eventsOf(t, ch, other, EventBalanceChanged)[0]
	if ev.OldBalance != 700 || ev.NewBalance != 0 {
		t.Fatalf("event after two no-op changes and a removal: %+v, want the removal 700 -> 0", ev)
	}
}

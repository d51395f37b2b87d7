package node

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// rawEvent is an events notification as it is on the wire.
type rawEvent struct {
	Type    string     `json:"type"`
	ID      string     `json:"id"`
	Time    string     `json:"time"`
	Reason  *string    `json:"reason"`
	Balance *[2]uint64 `json:"balance"`
}

func (e rawEvent) String() string {
	s := e.Type
	if e.Reason != nil {
		s += fmt.Sprintf("(%s)", *e.Reason)
	}
	return s
}

// TestTheEventsStreamSaysWhenAndWhy reads vflux_subscribe("events") as JSON:
// every event has an RFC 3339 wall-clock time, deactivations and disconnects
// a reason, an active client that leaves is deactivated first, and a top-up
// is an event with the old and new balance.
func TestTheEventsStreamSaysWhenAndWhy(t *testing.T) {
	cfg := testConfig(1)
	cfg.InactiveAllowance = 0 // an evicted free client is dropped at once
	n := startNode(t, cfg, "", true)
	rc := n.stack.Attach()
	defer rc.Close()
	ctx := context.Background()
	msgs := make(chan json.RawMessage, 64)
	sub, err := rc.Subscribe(ctx, "vflux", msgs, "events")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	start := time.Now()

	timeout := deadline()
	// next returns the events of id up to one of type until.
	next := func(id enode.ID, until string) []rawEvent {
		t.Helper()
		var got []rawEvent
		for {
			select {
			case msg := <-msgs:
				var ev rawEvent
				if err := json.Unmarshal(msg, &ev); err != nil {
					t.Fatalf("event %s: %v", msg, err)
				}
				at, err := time.Parse(time.RFC3339Nano, ev.Time)
				if err != nil {
					t.Fatalf("event %s: time is not RFC 3339: %v", msg, err)
				}
				if at.Before(start.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
					t.Fatalf("event %s: time %v is not the wall clock (the test started at %v)", msg, at, start)
				}
				if ev.ID != id.String() {
					continue
				}
				got = append(got, ev)
				if ev.Type == until {
					return got
				}
			case err := <-sub.Err():
				t.Fatalf("subscription ended: %v", err)
			case <-timeout:
				t.Fatalf("no %s event for %s; got %v", until, id.TerminalString(), got)
			}
		}
	}
	// expect checks the last events of evs: types with their reasons ("" =
	// no reason field).
	expect := func(who string, evs []rawEvent, want ...string) {
		t.Helper()
		if len(evs) < len(want) {
			t.Fatalf("%s: events %v, want them to end with %v", who, evs, want)
		}
		tail := evs[len(evs)-len(want):]
		for i, w := range want {
			if tail[i].String() != w {
				t.Fatalf("%s: events %v, want them to end with %v", who, evs, want)
			}
		}
	}

	free := mustDial(t, n)
	waitCapacity(t, free, cfg.MinCap)
	freeID := free.srv.Self().ID()
	expect("free client", next(freeID, "activated"), "connected", "activated")

	paid, _ := newClientKey(t)
	paidID := paid.Self().ID()
	if _, _, err := n.api.AddBalance(ctx, paidID.String(), big.NewInt(1e15)); err != nil {
		t.Fatal(err)
	}
	top := next(paidID, "balanceChanged")
	if b := top[len(top)-1].Balance; b == nil || *b != [2]uint64{0, 1e15} {
		t.Fatalf("balanceChanged carries balance %v, want [0 1000000000000000]", b)
	}

	pc := dialWith(t, n, paid)
	waitCapacity(t, pc, cfg.MinCap)
	expect("evicted free client", next(freeID, "disconnected"),
		"deactivated(evicted by priority)", "disconnected(inactive allowance ended)")

	pc.cl.Close()
	expect("paid client that left", next(paidID, "disconnected"),
		"activated", "deactivated(peer left)", "disconnected(peer left)")
}

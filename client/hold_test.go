package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/client"
)

// failoverBound is how soon after an eviction the session must hold capacity
// on the next server: one dial and handshake on loopback.
const failoverBound = 5 * time.Second

func TestHoldPicksTheBestServerAndFailsOverWhenAPaidNewcomerEvictsIt(t *testing.T) {
	n := startNetwork(t)
	c := newClient(t, client.Config{
		Bootnodes:   []*enode.Node{n.boot.Self()},
		SurveyLimit: 3,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*netTimeout)
	defer cancel()
	s := c.Hold(ctx, 0)
	defer s.Close()

	next := func(want client.EventKind) client.Event {
		t.Helper()
		for {
			select {
			case ev, ok := <-s.Events():
				if !ok {
					t.Fatalf("session ended while waiting for event %d", want)
				}
				if ev.Kind == want {
					return ev
				}
				if ev.Kind == client.Disconnected || ev.Kind == client.DialFailed {
					t.Fatalf("unexpected %d from %s: %v", ev.Kind, ev.Server.ID().TerminalString(), ev.Err)
				}
			case <-ctx.Done():
				t.Fatalf("no event %d in time", want)
			}
		}
	}
	ev := next(client.Connected)
	if ev.Server.ID() != n.cheap.node().ID() {
		t.Fatalf("connected to %s first, want the cheap server", ev.Server.ID().TerminalString())
	}
	if ev.Capacity == 0 {
		next(client.CapacityChanged)
	}

	paidClient(t, n.cheap, 1e12)
	ev = next(client.Disconnected)
	if !ev.Evicted || ev.Server.ID() != n.cheap.node().ID() {
		t.Fatalf("disconnected from %s (evicted %v, %v), want an eviction by cheap", ev.Server.ID().TerminalString(), ev.Evicted, ev.Err)
	}
	evicted := time.Now()
	ev = next(client.Connected)
	if ev.Server.ID() != n.standard.node().ID() {
		t.Fatalf("failed over to %s, want the standard server", ev.Server.ID().TerminalString())
	}
	if ev.Capacity == 0 {
		ev = next(client.CapacityChanged)
	}
	if took := time.Since(evicted); took > failoverBound {
		t.Errorf("failover took %v, want at most %v", took, failoverBound)
	}
	if ev.Capacity == 0 {
		t.Errorf("no capacity on the standard server")
	}
}

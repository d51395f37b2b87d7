package clientpool

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

// Regression test: an activation that the peer never saw (the same call
// deactivated the client again before the update was delivered) restarted
// the inactive allowance, so on a real clock a free client could wait up to
// about twice its allowance. The pool now resumes the allowance that was
// running; an activation the peer saw still gives a fresh allowance.
func TestAnActivationThePeerNeverSawDoesNotRestartTheInactiveAllowance(t *testing.T) {
	tests := []struct {
		name           string
		seen           bool          // the activation is delivered before the deactivation
		disconnectedBy time.Duration // the client must be disconnected by then
		stillAt        time.Duration // and must still be connected at this time
	}{
		{name: "an unseen activation resumes the running allowance", seen: false,
			disconnectedBy: 60 * time.Second, stillAt: 59 * time.Second},
		{name: "a seen activation starts a fresh allowance", seen: true,
			disconnectedBy: 110 * time.Second, stillAt: 109 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &mclock.Simulated{}
			pool := NewClientPool(memorydb.New(), 1, 0, clock, nil)
			pool.Start()
			t.Cleanup(pool.Stop)
			pool.SetLimits(1, 10)
			b, a := newPeer(1, time.Hour), newPeer(2, time.Minute)
			pool.Register(b)
			pool.Register(a)
			if b.capacity() != 1 || a.capacity() != 0 || a.wasDisconnected() {
				t.Fatalf("setup: b has %d, a has %d (disconnected %v)", b.capacity(), a.capacity(), a.wasDisconnected())
			}
			clock.Run(50 * time.Second)

			// Activate a in place of b and put b back, then deactivate a,
			// as one pool call would (or, if seen, two calls).
			ca, cb := pool.clients[a.node.ID()], pool.clients[b.node.ID()]
			var acts callbacks
			pool.mu.Lock()
			now := clock.Now()
			pool.deactivate(cb, now, &acts, ReasonEvicted)
			pool.activate(ca, 1, now, &acts)
			if tt.seen {
				pool.mu.Unlock()
				acts.run(pool)
				acts = callbacks{}
				pool.mu.Lock()
			}
			pool.deactivate(ca, now, &acts, ReasonEvicted)
			pool.activate(cb, 1, now, &acts)
			pool.mu.Unlock()
			acts.run(pool)
			if seen := len(a.updates) > 0; seen != tt.seen {
				t.Fatalf("peer a got updates %v, want seen=%v", a.updates, tt.seen)
			}

			for at := 51 * time.Second; at <= tt.disconnectedBy; at += time.Second {
				clock.Run(time.Second)
				if at == tt.stillAt && a.wasDisconnected() {
					t.Fatalf("disconnected already at %v", at)
				}
			}
			if !a.wasDisconnected() {
				t.Fatalf("free client still connected at %v, past its allowance", tt.disconnectedBy)
			}
		})
	}
}

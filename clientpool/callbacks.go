package clientpool

import (
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// callback is one peer call decided under the lock and run after it. An
// update carries no capacity: run reports the client's capacity as it is at
// delivery time (see run).
type callback struct {
	c          *client
	disconnect bool
	requested  bool
}

// callbacks collects peer calls and events while the pool lock is held; run
// delivers them in decision order after the lock is released.
type callbacks struct {
	calls  []callback
	events []Event
}

func (a *callbacks) update(c *client, _ uint64, requested bool) { // the capacity is read at delivery (run)
	a.calls = append(a.calls, callback{c: c, requested: requested})
}

func (a *callbacks) disconnect(c *client) {
	a.calls = append(a.calls, callback{c: c, disconnect: true})
}

// event records an event of client c; reason is "" except for deactivations
// and disconnects.
func (a *callbacks) event(t EventType, c *client, now mclock.AbsTime, reason Reason) {
	a.add(Event{Type: t, ID: c.id, Capacity: c.capacity, Time: now, Reason: reason})
}

// add records ev, stamped with the wall clock: events are stamped when the
// pool decides, not when they are delivered.
func (a *callbacks) add(ev Event) {
	ev.Wall = time.Now()
	a.events = append(a.events, ev)
}

// run publishes the events and invokes the peer callbacks; the pool lock must
// not be held.
//
// Capacity updates are delivered so that every peer ends up told the pool's
// capacity, each change once, and every update a call decides reaches the
// peer before the call returns (SPEC 3.2), even when callbacks call back into
// the pool or several goroutines deliver at once:
//   - an update reports the client's capacity at delivery time, and only if it
//     differs from what the peer was last told (c.told); a re-entrant call (say
//     Unregister from Disconnect) delivers its own callbacks ahead of the rest
//     of this batch, so the capacity decided here may be stale by its turn;
//   - one goroutine at a time delivers to a client (c.delivering). A caller
//     that finds a delivery under way waits for it to end (p.delivered), then
//     delivers itself: the capacity it reads is at least as new as its own
//     decision, and whatever the other goroutine sent was read earlier, so the
//     peer is never left with an older capacity.
//
// The wait cannot deadlock because a goroutine is only ever "delivering"
// inside Peer.UpdateCapacity, which must not call into the pool; Disconnect
// (which may call Unregister) runs outside any delivery.
//
// Nothing is reported to an unregistered client.
func (a *callbacks) run(p *ClientPool) {
	if len(a.events) > 0 {
		p.publish(a.events)
	}
	for _, cb := range a.calls {
		if cb.disconnect {
			cb.c.peer.Disconnect()
			continue
		}
		p.deliverCapacity(cb.c, cb.requested)
	}
}

// testHookDeliveryWait, set only by tests, is called (pool lock held) when a
// caller starts waiting for another goroutine's delivery to the same client.
var testHookDeliveryWait func(p *ClientPool)

// deliverCapacity tells c's peer its current capacity if it changed since the
// peer was last told (see run). The pool lock must not be held.
func (p *ClientPool) deliverCapacity(c *client, requested bool) {
	p.mu.Lock()
	for c.delivering {
		if testHookDeliveryWait != nil {
			testHookDeliveryWait(p)
		}
		p.delivered.Wait()
	}
	capacity := c.capacity
	send := c.registered && capacity != c.told
	if !send {
		p.mu.Unlock()
		return
	}
	c.told = capacity
	c.delivering = true
	p.mu.Unlock()

	c.peer.UpdateCapacity(capacity, requested)

	p.mu.Lock()
	c.delivering = false
	p.delivered.Broadcast()
	p.mu.Unlock()
}

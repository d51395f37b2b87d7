package clientpool

import "github.com/ethereum/go-ethereum/common/mclock"

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

func (a *callbacks) event(t EventType, c *client, now mclock.AbsTime) {
	a.events = append(a.events, Event{Type: t, ID: c.id, Capacity: c.capacity, Time: now})
}

// run publishes the events and invokes the peer callbacks; the pool lock must
// not be held.
//
// A callback may call back into the pool (say Unregister from Disconnect), and
// that nested call delivers its own callbacks at once, ahead of the rest of
// this batch: a capacity decided here may be stale by the time its turn comes.
// So an update reports the client's capacity at delivery time, and only if it
// differs from what the peer was last told (c.told); nothing is reported to an
// unregistered client. The peer then always ends up told the pool's capacity,
// each change once.
func (a *callbacks) run(p *ClientPool) {
	if len(a.events) > 0 {
		p.publish(a.events)
	}
	for _, cb := range a.calls {
		if cb.disconnect {
			cb.c.peer.Disconnect()
			continue
		}
		p.mu.Lock()
		c := cb.c
		capacity := c.capacity
		send := c.registered && capacity != c.told
		if send {
			c.told = capacity
		}
		p.mu.Unlock()
		if send {
			c.peer.UpdateCapacity(capacity, cb.requested)
		}
	}
}

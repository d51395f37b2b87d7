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
// Capacity updates are delivered so that every peer ends up told the pool's
// capacity, each change once, even when callbacks call back into the pool or
// several goroutines deliver at once:
//   - an update reports the client's capacity at delivery time, and only if it
//     differs from what the peer was last told (c.told); a re-entrant call (say
//     Unregister from Disconnect) delivers its own callbacks ahead of the rest
//     of this batch, so the capacity decided here may be stale by its turn;
//   - one goroutine at a time delivers to a client (c.delivering). A caller
//     that finds a delivery running leaves a note (c.redeliver) and moves on;
//     the running deliverer reads the capacity again after its call returns.
//     That caller's update then reaches the peer just after, not before, the
//     call returns: the price of never showing a peer an older capacity last.
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

// deliverCapacity tells c's peer its current capacity if it changed since the
// peer was last told (see run). The pool lock must not be held.
func (p *ClientPool) deliverCapacity(c *client, requested bool) {
	p.mu.Lock()
	if c.delivering {
		c.redeliver = true
		c.redeliverReq = c.redeliverReq || requested
		p.mu.Unlock()
		return
	}
	c.delivering = true
	for {
		capacity := c.capacity
		send := c.registered && capacity != c.told
		if send {
			c.told = capacity
		}
		p.mu.Unlock()
		if send {
			c.peer.UpdateCapacity(capacity, requested)
		}
		p.mu.Lock()
		if !c.redeliver {
			break
		}
		requested = c.redeliverReq
		c.redeliver, c.redeliverReq = false, false
	}
	c.delivering = false
	p.mu.Unlock()
}

package clientpool

import "github.com/ethereum/go-ethereum/common/mclock"

// callback is one peer call decided under the lock and run after it.
type callback struct {
	peer       Peer
	disconnect bool
	cap        uint64
	requested  bool
}

// callbacks collects peer calls and events while the pool lock is held; run
// delivers them in decision order after the lock is released.
type callbacks struct {
	calls  []callback
	events []Event
}

func (a *callbacks) update(c *client, cap uint64, requested bool) {
	a.calls = append(a.calls, callback{peer: c.peer, cap: cap, requested: requested})
}

func (a *callbacks) disconnect(c *client) {
	a.calls = append(a.calls, callback{peer: c.peer, disconnect: true})
}

func (a *callbacks) event(t EventType, c *client, now mclock.AbsTime) {
	a.events = append(a.events, Event{Type: t, ID: c.id, Capacity: c.capacity, Time: now})
}

// run publishes the events and invokes the peer callbacks; the pool lock must
// not be held.
func (a *callbacks) run(p *ClientPool) {
	if len(a.events) > 0 {
		p.publish(a.events)
	}
	for _, cb := range a.calls {
		if cb.disconnect {
			cb.peer.Disconnect()
		} else {
			cb.peer.UpdateCapacity(cb.cap, cb.requested)
		}
	}
}

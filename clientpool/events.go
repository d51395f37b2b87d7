package clientpool

import (
	"github.com/ethereum/go-ethereum/event"
	"github.com/vflux-net/vflux/params"
)

// eventSub is one subscriber's bounded queue. The pool never blocks on it: an
// event that does not fit is dropped and counted.
type eventSub struct {
	queue chan Event
}

// SubscribeEvents delivers pool events (connected, activated, capacity
// changed, deactivated, disconnected, balance exhausted, balance changed) to
// ch. Each
// subscription has its own bounded queue and delivery goroutine, so a slow
// subscriber loses events (counted by DroppedEvents) and never blocks the pool
// or other subscribers. The subscription ends on Unsubscribe or pool Stop.
func (p *ClientPool) SubscribeEvents(ch chan<- Event) event.Subscription {
	s := &eventSub{queue: make(chan Event, params.EventQueueSize)}
	p.subsMu.Lock()
	p.subs = append(p.subs, s)
	p.subsMu.Unlock()
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer p.removeSub(s)
		for {
			select {
			case ev := <-s.queue:
				select {
				case ch <- ev:
				case <-quit:
					return nil
				case <-p.quit:
					return nil
				}
			case <-quit:
				return nil
			case <-p.quit:
				return nil
			}
		}
	})
}

func (p *ClientPool) removeSub(s *eventSub) {
	p.subsMu.Lock()
	defer p.subsMu.Unlock()
	for i, x := range p.subs {
		if x == s {
			p.subs = append(p.subs[:i], p.subs[i+1:]...)
			return
		}
	}
}

// DroppedEvents returns how many events subscribers lost because their queue
// was full.
func (p *ClientPool) DroppedEvents() uint64 {
	return p.dropped.Load()
}

// publish queues events to every subscriber without blocking; it is called
// with the pool lock released.
func (p *ClientPool) publish(evs []Event) {
	p.subsMu.Lock()
	defer p.subsMu.Unlock()
	for _, s := range p.subs {
		for _, ev := range evs {
			select {
			case s.queue <- ev:
			default:
				p.dropped.Add(1)
			}
		}
	}
}

package vflux

import (
	"net"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Request states in the blocking limiter.
const (
	reqWaiting = iota
	reqGranted
	reqDropped
)

// limiter admits batches to the service one at a time, in the fair order of its
// scheduler, for callers on many goroutines (discv5 runs each TALKREQ on its own
// goroutine). A caller that finds the limiter idle is served inline, without a
// goroutine hop or an allocation; otherwise it waits on its own channel until the
// request is granted, dropped (overflow, Stop) or its wait bound passes.
type limiter struct {
	clock mclock.Clock

	mu      sync.Mutex
	sched   *scheduler
	timer   mclock.Timer // armed while the rate holds back a waiting request
	stopped bool

	// waitHook, if set (tests), is called with the number of waiting requests
	// after a request starts waiting, outside the lock.
	waitHook func(waiting int)
}

func newLimiter(clock mclock.Clock, rate float64, maxQueuedCost uint64, maxWaiters int) *limiter {
	return &limiter{clock: clock, sched: newScheduler(rate, maxQueuedCost, maxWaiters)}
}

// acquire blocks until the caller may serve a batch of the given cost, and
// reports whether it may. It returns false when the request was dropped: the
// limiter is stopped, the queue overflowed with this caller as the biggest
// offender, or maxWait passed. After true the caller must call release.
func (l *limiter) acquire(id enode.ID, ip net.IP, cost uint64, maxWait time.Duration) bool {
	if cost == 0 {
		cost = 1
	}
	group := groupKeyOf(ip)
	now := l.clock.Now()

	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	if l.sched.tryStart(now, group, cost) {
		l.mu.Unlock()
		return true
	}
	r := &request{id: id, group: group, cost: cost, deadline: now.Add(maxWait), done: make(chan bool, 1)}
	l.sched.enqueue(r)
	l.dispatch(now)
	state, waiting := r.state, l.sched.waiting
	l.mu.Unlock()
	if state != reqWaiting {
		return state == reqGranted // decided at once: served next, or dropped
	}
	timer := l.clock.NewTimer(maxWait)
	defer timer.Stop()
	if l.waitHook != nil {
		// After the timer exists: a test that moves a simulated clock once the
		// hook ran must move it past this request's bound too.
		l.waitHook(waiting)
	}
	select {
	case ok := <-r.done:
		return ok
	case <-timer.C():
	}
	l.mu.Lock()
	if r.state == reqWaiting {
		l.sched.remove(r)
		r.state = reqDropped
		l.mu.Unlock()
		return false
	}
	l.mu.Unlock()
	// Granted or dropped while the timer fired: the decision is in the channel.
	return <-r.done
}

// release ends the service of the caller's granted request and admits the next.
func (l *limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sched.done()
	if !l.stopped && l.sched.waiting > 0 {
		l.dispatch(l.clock.Now())
	}
}

// stop drops every waiting request; later acquires return false at once.
func (l *limiter) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.sched.dropAll()
	l.flushDropped()
}

// waiting returns the number of waiting requests.
func (l *limiter) waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sched.waiting
}

// dispatch grants the service to the next request if it is free, or arms the
// rate timer. The grant and drop notifications are sends on channels with a
// buffer of one, each written once, so they never block under the lock.
// Callers hold l.mu.
func (l *limiter) dispatch(now mclock.AbsTime) {
	r, wait := l.sched.next(now)
	l.flushDropped()
	if r != nil {
		r.state = reqGranted
		r.done <- true
		return
	}
	if wait > 0 && l.timer == nil {
		l.timer = l.clock.AfterFunc(wait, l.onTimer)
	}
}

func (l *limiter) onTimer() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if !l.stopped {
		l.dispatch(l.clock.Now())
	}
}

// flushDropped tells the callers of dropped requests. Callers hold l.mu.
func (l *limiter) flushDropped() {
	for i, r := range l.sched.dropped {
		if r.state == reqWaiting {
			r.state = reqDropped
			r.done <- false
		}
		l.sched.dropped[i] = nil
	}
	l.sched.dropped = l.sched.dropped[:0]
}

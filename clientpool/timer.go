package clientpool

import (
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// clientTimer is one per-client timer (the threshold timer of an active
// client, the allowance and the decay timer of a waiting one), used with the
// pool lock held. A firing runs its handler on the timer's goroutine, which
// takes the pool lock; the generation counter makes a firing that raced with
// stop or a re-arm harmless: the handler acts only if fired(gen) says the
// firing is the one armed last.
type clientTimer struct {
	t   mclock.Timer
	gen uint64
	due mclock.AbsTime // when the armed timer fires
}

// arm (re)arms the timer to call fire(gen) after d.
func (t *clientTimer) arm(clock mclock.Clock, d time.Duration, fire func(gen uint64)) {
	t.stop()
	gen := t.gen
	t.due = clock.Now().Add(d)
	t.t = clock.AfterFunc(d, func() { fire(gen) })
}

// stop stops the timer; a firing already under way is ignored.
func (t *clientTimer) stop() {
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
	t.gen++
}

// armed reports whether the timer is armed and has not fired.
func (t *clientTimer) armed() bool { return t.t != nil }

// fired reports whether a firing of generation gen is the one armed last,
// and if so marks the timer as no longer armed.
func (t *clientTimer) fired(gen uint64) bool {
	if gen != t.gen || t.t == nil {
		return false
	}
	t.t = nil
	return true
}

package protocol

import (
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// RequestCost is the cost of a request of in payload bytes answered with out
// payload bytes: base + perKB*(in+out)/1024, in cost units. Both sides use it:
// the server to meter, a client to pace itself (with the constants of the
// server's Handshake).
func RequestCost(base, perKB uint64, in, out int) uint64 {
	return base + perKB*uint64(in+out)/1024
}

// AdmissionCost is the cost a request of in payload bytes must fit in the
// buffer before it is served: the request's part of RequestCost (the reply's
// size is not known yet).
func AdmissionCost(base, perKB uint64, in int) uint64 {
	return RequestCost(base, perKB, in, 0)
}

// meter is a client's flow control buffer: it recharges at rate cost units per
// second up to rate*bufferSecs, is charged with the full cost of every served
// request (it may go below zero when a reply is large), and admits a request
// only if its admission cost fits. It is owned by one peer loop; no locking.
type meter struct {
	clock      mclock.Clock
	bufferSecs uint64
	rate       uint64  // cost units per second
	buf        float64 // may be negative after a large reply
	last       mclock.AbsTime
}

func newMeter(clock mclock.Clock, rate, bufferSecs uint64) *meter {
	m := &meter{clock: clock, bufferSecs: bufferSecs, rate: rate, last: clock.Now()}
	m.buf = m.max()
	return m
}

func (m *meter) max() float64 { return float64(m.rate) * float64(m.bufferSecs) }

// recharge brings the buffer up to now.
func (m *meter) recharge() {
	now := m.clock.Now()
	if dt := now.Sub(m.last); dt > 0 {
		m.buf = math.Min(m.max(), m.buf+float64(m.rate)*dt.Seconds())
	}
	m.last = now
}

// setRate changes the recharge rate from now on. A raise keeps what is
// missing from a full buffer (a full buffer stays full, so a client raised at
// connection time gets its whole burst); a cut clamps the buffer to the new size.
func (m *meter) setRate(rate uint64) {
	m.recharge()
	oldMax := m.max()
	m.rate = rate
	if newMax := m.max(); newMax > oldMax {
		m.buf += newMax - oldMax
	} else {
		m.buf = math.Min(m.buf, newMax)
	}
}

// admit reports whether a request of the given admission cost fits now and, if
// not, how long until it would. A cost above the whole buffer is admitted once
// the buffer is full, so every request size can be served eventually.
func (m *meter) admit(cost uint64) (time.Duration, bool) {
	m.recharge()
	need := math.Min(float64(cost), m.max())
	if m.buf >= need-1e-6 { // tolerate float rounding of the recharge
		return 0, true
	}
	if m.rate == 0 {
		return time.Duration(math.MaxInt64), false
	}
	secs := (need - m.buf) / float64(m.rate)
	wait := time.Duration(math.Ceil(secs*1000)) * time.Millisecond
	if wait <= 0 {
		wait = time.Millisecond
	}
	return wait, false
}

// charge takes cost from the buffer.
func (m *meter) charge(cost uint64) {
	m.recharge()
	m.buf -= float64(cost)
}

// Meter is the same flow-control buffer for other users of the metering rule:
// the node's governed protocols (SPEC 11) keep one per client, shared by all
// of its governed protocols. It is not safe for concurrent use; its owner
// locks it.
type Meter struct{ meter }

// NewMeter returns a full buffer recharging at rate cost units per second, up
// to rate*bufferSecs.
func NewMeter(clock mclock.Clock, rate, bufferSecs uint64) *Meter {
	return &Meter{*newMeter(clock, rate, bufferSecs)}
}

// SetRate changes the recharge rate from now on (see meter.setRate).
func (m *Meter) SetRate(rate uint64) { m.setRate(rate) }

// Admit reports whether cost fits in the buffer now and, if not, how long
// until it would (see meter.admit).
func (m *Meter) Admit(cost uint64) (time.Duration, bool) { return m.admit(cost) }

// Charge takes cost from the buffer; it may go below zero.
func (m *Meter) Charge(cost uint64) { m.charge(cost) }

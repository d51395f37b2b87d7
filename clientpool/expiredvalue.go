package clientpool

import (
	"math"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// LogOffset is the global expiration offset L of a balance kind (SPEC 2.1), a
// fixed-point number with 24 fractional bits. It only grows with time: a value
// stored as an ExpiredValue reads Base * 2^(Exp - L).
type LogOffset int64

// logOffsetOne is 1.0 as a LogOffset.
const logOffsetOne = 1 << 24

// LogOffsetFromFloat converts a float to a LogOffset.
func LogOffsetFromFloat(f float64) LogOffset {
	return LogOffset(math.Round(f * logOffsetOne))
}

// Float64 returns the offset as a float.
func (l LogOffset) Float64() float64 {
	return float64(l) / logOffsetOne
}

// integer returns the integer part of a non-negative offset.
func (l LogOffset) integer() uint64 {
	if l < 0 {
		return 0
	}
	return uint64(l) >> 24
}

// fraction returns the fractional part of the offset, in [0, 1).
func (l LogOffset) fraction() float64 {
	return float64(uint64(l)&(logOffsetOne-1)) / logOffsetOne
}

// ExpiredValue is a decaying amount (SPEC 2.1): value(L) = Base * 2^(Exp - L).
// Its RLP encoding is the list [Base, Exp].
type ExpiredValue struct {
	Base, Exp uint64
}

// toUint64 converts a non-negative float to uint64, saturating instead of
// relying on the implementation-defined conversion of out-of-range floats.
func toUint64(f float64) uint64 {
	switch {
	case !(f > 0): // also NaN
		return 0
	case f >= math.MaxUint64:
		return math.MaxUint64
	default:
		return uint64(math.Round(f))
	}
}

// IsZero reports whether the value is zero at every offset.
func (e ExpiredValue) IsZero() bool {
	return e.Base == 0
}

// Value returns the amount at offset l, capped at MaxInt64 (the cap of every
// balance).
func (e ExpiredValue) Value(l LogOffset) uint64 {
	if e.Base == 0 {
		return 0
	}
	var v uint64
	if l >= 0 && l.fraction() == 0 {
		// exact integer arithmetic at whole offsets (always, without expiration)
		v = shiftValue(e.Base, int64(e.Exp)-int64(l.integer()))
	} else {
		v = toUint64(float64(e.Base) * math.Exp2(float64(e.Exp)-l.Float64()))
	}
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return v
}

// shiftValue returns v * 2^shift, saturating at MaxUint64.
func shiftValue(v uint64, shift int64) uint64 {
	switch {
	case shift <= -64:
		return 0
	case shift < 0:
		return v >> uint(-shift)
	case shift == 0:
		return v
	case shift >= 64 || v > math.MaxUint64>>uint(shift):
		return math.MaxUint64
	default:
		return v << uint(shift)
	}
}

// align raises Exp to the integer part of l (shifting Base right), so that an
// amount added at l lands within [v, 2v) of Base.
func (e *ExpiredValue) align(l LogOffset) {
	integer := l.integer()
	if integer <= e.Exp {
		return
	}
	if d := integer - e.Exp; d >= 64 {
		e.Base = 0
	} else {
		e.Base >>= d
	}
	e.Exp = integer
}

// Add adds amount (which may be negative) at offset l and returns the change of
// the value at l actually made: subtracting more than is there saturates at
// zero and reports only what was removed; adding saturates at MaxUint64 of Base.
func (e *ExpiredValue) Add(amount int64, l LogOffset) int64 {
	if amount == 0 {
		return 0
	}
	e.align(l)
	// The amount at l expressed in units of 2^Exp: exact at whole offsets.
	exact := l >= 0 && l.fraction() == 0
	factor := math.Exp2(l.fraction() - float64(e.Exp-l.integer()))
	scale := func(a uint64) uint64 {
		if exact {
			return shiftValue(a, -int64(e.Exp-l.integer()))
		}
		return toUint64(float64(a) * factor)
	}
	if amount > 0 {
		add := scale(uint64(amount))
		if e.Base > math.MaxUint64-add {
			add = math.MaxUint64 - e.Base
		}
		e.Base += add
		return amount
	}
	var sub uint64
	if amount == math.MinInt64 {
		sub = scale(1 << 63)
	} else {
		sub = scale(uint64(-amount))
	}
	if sub >= e.Base {
		removed := e.Value(l)
		e.Base = 0
		if removed > math.MaxInt64 {
			return math.MinInt64
		}
		return -int64(removed)
	}
	e.Base -= sub
	return amount
}

// AddExp adds another expired value, aligning the exponents first.
func (e *ExpiredValue) AddExp(a ExpiredValue) {
	if a.Base == 0 {
		return
	}
	if e.Base == 0 {
		*e = a
		return
	}
	base := e.alignWith(a)
	if e.Base > math.MaxUint64-base {
		e.Base = math.MaxUint64
	} else {
		e.Base += base
	}
}

// alignWith raises e's exponent to a's if a's is higher and returns a's base
// expressed at e's exponent (0 when it shifts out entirely).
func (e *ExpiredValue) alignWith(a ExpiredValue) uint64 {
	if a.Exp > e.Exp {
		e.align(LogOffset(a.Exp << 24))
	}
	if d := e.Exp - a.Exp; d < 64 {
		return a.Base >> d
	}
	return 0
}

// SubExp subtracts another expired value, aligning the exponents first; the
// result saturates at zero.
func (e *ExpiredValue) SubExp(a ExpiredValue) {
	if a.Base == 0 || e.Base == 0 {
		return
	}
	base := e.alignWith(a)
	if base >= e.Base {
		e.Base = 0
		return
	}
	e.Base -= base
}

// expClock is the expiration clock of one balance kind: its log offset grows
// linearly with time at a rate set by the time constant (an e-folding time).
type expClock struct {
	base     LogOffset      // offset at baseTime
	baseTime mclock.AbsTime // when base was taken
	rate     float64        // LogOffset units per nanosecond
	tc       uint64         // time constant in seconds, 0 = never expires
}

// at returns the log offset at time t.
func (c *expClock) at(t mclock.AbsTime) LogOffset {
	if c.rate == 0 || t <= c.baseTime {
		return c.base
	}
	return c.base + LogOffset(c.rate*float64(t-c.baseTime))
}

// setTC changes the time constant from now on, keeping the offset continuous.
func (c *expClock) setTC(now mclock.AbsTime, tc uint64) {
	c.base = c.at(now)
	c.baseTime = now
	c.tc = tc
	if tc == 0 {
		c.rate = 0
		return
	}
	// value falls by e every tc seconds: L grows by 1/ln2 (in units of 1.0)
	// per tc, i.e. 2^24/ln2/(tc*1e9) fixed-point units per ns.
	c.rate = logOffsetOne / math.Ln2 / (float64(tc) * 1e9)
}

// tauNs returns the time constant in nanoseconds, 0 = never expires.
func (c *expClock) tauNs() float64 {
	if c.rate == 0 {
		return 0
	}
	return float64(c.tc) * 1e9
}

// restore sets the offset at now, e.g. to a persisted value at start.
func (c *expClock) restore(now mclock.AbsTime, l LogOffset) {
	c.base = l
	c.baseTime = now
}

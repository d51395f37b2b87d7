package clientpool

import (
	"math"
	"time"
)

// timePrice is the price of one nanosecond of active connection at capacity
// cap with an average request cost rate reqRate (cost units per ns), in tokens.
func (f PriceFactors) timePrice(cap uint64, reqRate float64) float64 {
	p := f.TimeFactor + float64(cap)*f.CapacityFactor/1e6 + f.RequestFactor*reqRate
	if !(p > 0) { // negative or NaN factors charge nothing
		return 0
	}
	return p
}

// valid reports whether the factors are finite and non-negative.
func (f PriceFactors) valid() bool {
	for _, v := range []float64{f.TimeFactor, f.CapacityFactor, f.RequestFactor} {
		if !(v >= 0) || math.IsInf(v, 1) {
			return false
		}
	}
	return true
}

// addSat adds a signed amount to a balance, saturating at 0 and MaxInt64.
func addSat(v uint64, amount float64) uint64 {
	r := float64(v) + amount
	switch {
	case !(r > 0):
		return 0
	case r >= math.MaxInt64:
		return math.MaxInt64
	default:
		return uint64(math.Round(r))
	}
}

// chargeTime charges dt of service: the positive balance pays first at posPrice
// per ns; the part of the interval it could not cover is charged to the
// negative balance at negPrice per ns (SPEC 2.2). It returns the amounts to
// take from pos and to add to neg.
func chargeTime(pos uint64, posPrice, negPrice float64, dt time.Duration) (posCost, negCost float64) {
	if dt <= 0 {
		return 0, 0
	}
	uncovered := float64(dt)
	if pos > 0 {
		cost := posPrice * float64(dt)
		if cost <= float64(pos) {
			return cost, 0
		}
		uncovered *= 1 - float64(pos)/cost
		posCost = float64(pos)
	}
	return posCost, negPrice * uncovered
}

// balSnap is a copy of a client's balances and prices at one moment, the input
// of the pure priority functions. Snapshots let the capacity curve compute
// priorities without the pool lock.
type balSnap struct {
	pos, neg   uint64
	posF, negF PriceFactors
	reqRate    float64 // average request cost per ns while active
	posExact   float64 // pos before rounding (0 when unknown: use pos)
	posTau     float64 // e-folding time of the positive balance in ns, 0 = no decay
}

// priority is the priority at capacity cap (SPEC 2.3): max(1, pos/cap) for a
// priority client, else -neg. Higher is better.
func (b *balSnap) priority(cap uint64) int64 {
	if b.pos > 0 {
		if cap == 0 {
			cap = 1
		}
		p := b.pos / cap
		if p < 1 {
			return 1
		}
		if p > math.MaxInt64 {
			return math.MaxInt64
		}
		return int64(p)
	}
	if b.neg > math.MaxInt64 {
		return -math.MaxInt64
	}
	return -int64(b.neg)
}

// spend charges dt at capacity cap with request rate reqRate, as chargeTime,
// and lets the positive balance decay over dt. With decay it uses the
// continuous model v' = -v/tau - price, whose value never exceeds what settle
// (one charge at the interval's midpoint offset) leaves, so the result stays a
// lower bound: v(t) = (v0 + price*tau)*e^(-t/tau) - price*tau. The positive
// balance is gone once it reads 0 (below half a token); the rest of dt is
// charged to the negative balance.
func (b *balSnap) spend(cap uint64, dt time.Duration, reqRate float64) {
	posPrice, negPrice := b.posF.timePrice(cap, reqRate), b.negF.timePrice(cap, reqRate)
	if b.posTau <= 0 || b.pos == 0 || dt <= 0 {
		pc, nc := chargeTime(b.pos, posPrice, negPrice, dt)
		b.pos = addSat(b.pos, -pc)
		b.neg = addSat(b.neg, nc)
		return
	}
	v0 := float64(b.pos)
	rt := posPrice * b.posTau
	if v := (v0+rt)*math.Exp(-float64(dt)/b.posTau) - rt; v > posGoneBelow {
		b.pos = uint64(v) // rounded down: a lower bound
		return
	}
	gone := b.posTau * math.Log((v0+rt)/(posGoneBelow+rt)) // when it read 0
	b.pos = 0
	if rest := float64(dt) - gone; rest > 0 {
		b.neg = addSat(b.neg, negPrice*rest)
	}
}

// posGoneBelow is the value below which a decaying positive balance reads 0
// (ExpiredValue.Value rounds to the nearest token).
const posGoneBelow = 0.5

// untilBelow returns how many ns a balance v0 spending price tokens per ns
// and decaying with e-folding time tau ns (0 = none) takes to fall to h, by
// the continuous model of spend (never later than settle would see it);
// +Inf if it never does.
func untilBelow(v0, h, price, tau float64) float64 {
	switch {
	case v0 <= h:
		return 0
	case tau <= 0 && price <= 0:
		return math.Inf(1)
	case tau <= 0:
		return (v0 - h) / price
	case h+price*tau <= 0:
		return math.Inf(1)
	default:
		rt := price * tau
		return tau * math.Log((v0+rt)/(h+rt))
	}
}

// estimate is estimatePriority (SPEC 2.3): a lower bound of the priority at
// capacity cap over [now, now+future+bias] after adding addTokens: the cost of
// future at twice the average request rate, then the cost of bias without
// request cost, with the positive balance decaying over both (see spend). It is clamped strictly below the actual priority of the
// balance including addTokens (the Fix: the original clamped against the
// balance without them).
func (b balSnap) estimate(cap uint64, addTokens int64, future, bias time.Duration) int64 {
	b.pos = addSat(b.pos, float64(addTokens))
	actual := b.priority(cap)
	if future > 0 {
		b.spend(cap, future, 2*b.reqRate)
	}
	if bias > 0 {
		b.spend(cap, bias, 0)
	}
	est := b.priority(cap)
	if est >= actual {
		est = actual - 1
	}
	return est
}

package clientpool

import (
	"math"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

// Regression tests for a positive balance that runs out by decay (SPEC 2.4):
// the threshold timer used to count only spending, and hasPriority cleared a
// decayed balance silently, so a client kept its raised capacity (no cut to
// minCap, no EventBalanceExhausted) after its balance had decayed away.

func TestAPositiveBalanceThatDecaysAwayIsCutToMinCapOnTime(t *testing.T) {
	tests := []struct {
		name      string
		price     PriceFactors // positive factors; the negative ones are zero
		tcsBefore bool         // expiration set before the client registers
		balance   int64
		capacity  uint64
		horizon   time.Duration // simulated time stepped through, in 1 s steps
		mustBeCut bool
	}{
		{name: "decay alone at price 0 cuts the client to minCap", tcsBefore: true,
			balance: 1e9, capacity: 50, horizon: 400 * time.Second, mustBeCut: true},
		{name: "decay set after the client was raised still cuts it", tcsBefore: false,
			balance: 1e9, capacity: 50, horizon: 400 * time.Second, mustBeCut: true},
		{name: "decay together with a slow spending rate cuts it", tcsBefore: true,
			price: PriceFactors{TimeFactor: 1e-3}, balance: 1e9, capacity: 50, horizon: 400 * time.Second, mustBeCut: true},
		{name: "decay together with a spending rate per capacity cuts it", tcsBefore: true,
			price: PriceFactors{CapacityFactor: 2e2}, balance: 1e12, capacity: 50, horizon: 400 * time.Second, mustBeCut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &mclock.Simulated{}
			pool := NewClientPool(memorydb.New(), 1, 0, clock, nil)
			pool.Start()
			t.Cleanup(pool.Stop)
			pool.SetLimits(10, 100)
			pool.SetDefaultFactors(tt.price, PriceFactors{})
			if tt.tcsBefore {
				pool.SetExpirationTCs(10, 0)
			}
			ch := subscribeEvents(t, pool, 1000)

			p := newPeer(1, time.Minute)
			if err := addBalance(pool, p.node.ID(), tt.balance); err != nil {
				t.Fatal(err)
			}
			bal := pool.Register(p)
			if got, err := pool.SetCapacity(p.node, tt.capacity, 0, true); err != nil || got != tt.capacity {
				t.Fatalf("raise to %d = %d, %v", tt.capacity, got, err)
			}
			if !tt.tcsBefore {
				pool.SetExpirationTCs(10, 0)
			}
			cutAt := time.Duration(-1)
			for step := time.Duration(0); step < tt.horizon; step += time.Second {
				clock.Run(time.Second)
				pos, _ := bal.GetBalance() // reads without settling: only the timer acts
				cap := p.capacity()
				if pos == 0 && cap > 1 {
					t.Fatalf("at %v the balance reads 0 but the client still holds %d > minCap", step+time.Second, cap)
				}
				if cap == 1 && cutAt < 0 {
					cutAt = step + time.Second
					if pos > cutSlack {
						t.Fatalf("cut to minCap at %v while the balance still reads %d", cutAt, pos)
					}
				}
			}
			if tt.mustBeCut && cutAt < 0 {
				t.Fatalf("client never cut to minCap within %v", tt.horizon)
			}
			// The loss was reported.
			for {
				ev := nextEvent(t, ch)
				if ev.Type == EventBalanceExhausted {
					if ev.Time > mclock.AbsTime(cutAt) {
						t.Fatalf("EventBalanceExhausted at %v, after the cut at %v", time.Duration(ev.Time), cutAt)
					}
					break
				}
			}
			if got, err := pool.SetCapacity(p.node, tt.capacity, 0, true); err != ErrNoPriority || got != 1 {
				t.Fatalf("raise after the balance decayed = %d, %v; want 1, ErrNoPriority", got, err)
			}
		})
	}
}

// cutSlack is the largest balance reading at which a cut to minCap is
// acceptable: the timer may fire a little early (it never fires late), and
// the clock moves in 1 s steps.
const cutSlack = 2

func TestTheReviewReproDecayedBalanceKeepsCapacity(t *testing.T) {
	// The reviewer's repro: TC 10 s, 1e9 tokens, capacity 50, 2000 s later.
	clock := &mclock.Simulated{}
	pool := NewClientPool(memorydb.New(), 1, 0, clock, nil)
	pool.Start()
	t.Cleanup(pool.Stop)
	pool.SetLimits(10, 100)
	pool.SetExpirationTCs(10, 0)
	p := newPeer(1, time.Minute)
	addBalance(pool, p.node.ID(), 1e9)
	pool.Register(p)
	if got, err := pool.SetCapacity(p.node, 50, 0, true); got != 50 || err != nil {
		t.Fatalf("raise = %d, %v", got, err)
	}
	clock.Run(2000 * time.Second)
	if pos, _ := balanceOf(pool, p.node.ID(), p.freeID); pos != 0 {
		t.Fatalf("balance reads %d after 200 time constants", pos)
	}
	if cap := p.capacity(); cap != 1 {
		t.Fatalf("client with a decayed-away balance holds %d, want minCap 1", cap)
	}
	if _, c := pool.Active(); c != 1 {
		t.Fatalf("Active capacity %d, want 1", c)
	}
}

func TestTheThresholdTimerIsDueWhenDecayAndSpendingTogetherReachTheThreshold(t *testing.T) {
	tests := []struct {
		name            string
		v0, h, price    float64
		tau             float64
		want            float64
		wantInf, approx bool
	}{
		{name: "spending alone is linear", v0: 100, h: 0, price: 2, want: 50},
		{name: "no spending and no decay never", v0: 100, h: 0, wantInf: true},
		{name: "decay alone is tau ln(v0/h)", v0: 100, h: 0.5, tau: 10, want: 10 * math.Log(200)},
		{name: "already below is now", v0: 0.4, h: 0.5, tau: 10, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := untilBelow(tt.v0, tt.h, tt.price, tt.tau)
			if tt.wantInf {
				if !math.IsInf(got, 1) {
					t.Fatalf("got %v, want +Inf", got)
				}
				return
			}
			if math.Abs(got-tt.want) > 1e-9*math.Max(1, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	// Both together: the model's value at the answer is the threshold, and
	// it is no later than either effect alone would say.
	v0, h, price, tau := 1e9, 0.5, 1e-2, 10e9
	got := untilBelow(v0, h, price, tau)
	if v := (v0+price*tau)*math.Exp(-got/tau) - price*tau; math.Abs(v-h) > 1e-3 {
		t.Fatalf("model value at %v is %v, want %v", got, v, h)
	}
	if got > untilBelow(v0, h, 0, tau) || got > untilBelow(v0, h, price, 0) {
		t.Fatalf("combined %v later than decay alone %v or spending alone %v", got, untilBelow(v0, h, 0, tau), untilBelow(v0, h, price, 0))
	}
}

func TestThePriorityEstimateIsALowerBoundUnderDecay(t *testing.T) {
	tests := []struct {
		name           string
		b              balSnap
		future, bias   time.Duration
		wantAtMost     int64
		wantAtLeastNeg int64 // the estimate stays above -this (no runaway)
	}{
		{name: "decay over the future lowers the estimate",
			b: balSnap{pos: 1e9, posTau: 10e9}, future: 10 * time.Second, wantAtMost: 367879441},
		{name: "decay over the bias lowers the estimate",
			b: balSnap{pos: 1e9, posTau: 10e9}, bias: 20 * time.Second, wantAtMost: 135335283},
		{name: "a balance that decays away within the horizon estimates as a free client",
			b: balSnap{pos: 10, posTau: 1e9, negF: PriceFactors{TimeFactor: 1}}, future: 10 * time.Second, wantAtMost: 0, wantAtLeastNeg: 10e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.b.estimate(1, 0, tt.future, tt.bias)
			if got > tt.wantAtMost {
				t.Fatalf("estimate %d, want at most %d", got, tt.wantAtMost)
			}
			if tt.wantAtLeastNeg > 0 && got < -tt.wantAtLeastNeg {
				t.Fatalf("estimate %d below -%d", got, tt.wantAtLeastNeg)
			}
		})
	}
}

package clientpool_test

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/vflux-net/vflux/clientpool"
)

// The timers a balance needs fire when they must, and only then.

// countingClock is a simulated clock that counts the timers armed on it, so a
// test can see a timer that re-arms itself without end.
type countingClock struct {
	*mclock.Simulated
	armed atomic.Int64
}

func (c *countingClock) AfterFunc(d time.Duration, f func()) mclock.Timer {
	c.armed.Add(1)
	return c.Simulated.AfterFunc(d, f)
}

// The threshold timer of an active free client fires when its priority, -neg,
// falls to its ordering key. A negative balance saturated at MaxInt64 cannot
// grow, so no timer is armed for it (the gap is taken in integers: near
// MaxInt64 a float64 cannot tell the key from the balance).
func TestASaturatedNegativeBalanceDoesNotSpinTheThresholdTimer(t *testing.T) {
	tests := []struct {
		name string
		neg  uint64
	}{
		{"a negative balance of exactly MaxInt64 arms no timer", math.MaxInt64},
		{"a negative balance that saturates within a second arms no timer", math.MaxInt64 - 5e8},
		{"a negative balance one token below MaxInt64 arms no timer", math.MaxInt64 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &countingClock{Simulated: new(mclock.Simulated)}
			pool := clientpool.NewClientPool(memorydb.New(), 1, 0, clock, alwaysSynced)
			pool.Start()
			t.Cleanup(pool.Stop)
			pool.SetLimits(10, 10)
			// one token per ns of free service goes to the negative balance
			pool.SetDefaultFactors(clientpool.PriceFactors{}, clientpool.PriceFactors{TimeFactor: 1})
			p := newTestPeer(testID(1), "10.0.0.1", time.Hour, clock)
			setBalance(t, pool, p.node.ID(), p.freeID, 0, tt.neg)
			if !register(pool, p) || p.Capacity() != 1 {
				t.Fatalf("the only client was not activated: capacity %d", p.Capacity())
			}
			before := clock.armed.Load()
			for i := 0; i < 1000; i++ { // 10 s in steps of 10 ms
				clock.Run(10 * time.Millisecond)
			}
			if armed := clock.armed.Load() - before; armed > 1 {
				t.Errorf("%d timers armed in 10 s for a client whose priority cannot fall any more", armed)
			}
			if _, neg := p.Balance().GetBalance(); neg != math.MaxInt64 {
				t.Errorf("negative balance %d after 10 s of service, want MaxInt64", neg)
			}
			if p.Capacity() != 1 {
				t.Errorf("client capacity %d, want 1 (still active)", p.Capacity())
			}
		})
	}
}

// A waiting priority client has a decay timer: when its positive balance
// decays away its inactive allowance starts at once, not at the next
// persistence pass (every minute).
func TestAWaitingClientWhoseBalanceDecaysAwayStartsItsAllowanceAtOnce(t *testing.T) {
	const allowance = 10 * time.Second
	tests := []struct {
		name    string
		balance uint64
	}{
		// With a 5 s time constant, v reads 0 after 5 s * ln(2v).
		{"a balance that decays away between two persistence passes", 3.6e10}, // ~125 s
		{"a balance that decays away just after a persistence pass", 1.7e10},  // ~121 s
		{"a balance that decays away within the first minute", 1e5},           // ~61 s
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, clock := newSimPool(t, memorydb.New(), 1, 0)
			pool.SetLimits(0, 0) // nobody is served: every client waits
			pool.SetExpirationTCs(5, 0)
			p := newTestPeer(testID(1), "10.0.0.1", allowance, clock)
			setBalance(t, pool, p.node.ID(), p.freeID, tt.balance, 0)
			if !register(pool, p) || p.Capacity() != 0 || p.Disconnected() {
				t.Fatalf("a priority client should wait: capacity %d, disconnected %v", p.Capacity(), p.Disconnected())
			}
			var lost, gone mclock.AbsTime
			for i := 0; i < 300 && gone == 0; i++ {
				clock.Run(time.Second)
				if pos, _ := p.Balance().GetBalance(); pos == 0 && lost == 0 {
					lost = clock.Now()
				}
				if p.Disconnected() {
					gone = clock.Now()
				}
			}
			if lost == 0 || gone == 0 {
				t.Fatalf("balance read 0 at %v, client disconnected at %v: want both within 300 s", time.Duration(lost), time.Duration(gone))
			}
			// Timers of a 1 s Run window fire at its end: one window of slack.
			if waited := time.Duration(gone - lost); waited < allowance-time.Second || waited > allowance+time.Second {
				t.Errorf("disconnected %v after the balance read 0, want its allowance %v (balance gone at %v)",
					waited, allowance, time.Duration(lost))
			}
		})
	}
}

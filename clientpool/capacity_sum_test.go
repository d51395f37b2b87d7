package clientpool

import (
	"math"
	"math/bits"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// The exact sum of the capacities the clients were told never exceeds maxCap,
// so it never wraps past 2^64-1, and it equals Active()'s capacity, however
// close to MaxUint64 maxCap ("unlimited") and the requests are.

// toldSum is the exact sum of the peers' capacities and whether it fits in 64 bits.
func toldSum(peers []*peer) (sum, count uint64, fits bool) {
	for _, p := range peers {
		c := p.capacity()
		if c == 0 {
			continue
		}
		var carry uint64
		if sum, carry = bits.Add64(sum, c, 0); carry != 0 {
			return sum, count, false
		}
		count++
	}
	return sum, count, true
}

func TestCapacitiesNeverSumPastMaxCapWhenItIsNearMaxUint64(t *testing.T) {
	for _, maxCap := range []uint64{math.MaxUint64, math.MaxUint64 - 1, math.MaxUint64 - 999, math.MaxUint64 - 1000} {
		clock := new(mclock.Simulated)
		pool := NewClientPool(nil, 1000, 3*time.Minute, clock, nil)
		pool.SetDefaultFactors(testFactors, testFactors)
		pool.SetLimits(10, maxCap)
		pool.Start()
		free, paid := newPeer(0, time.Hour), newPeer(1, time.Hour)
		pool.Register(free)
		if err := addBalance(pool, paid.node.ID(), math.MaxInt64); err != nil {
			t.Fatal(err)
		}
		pool.Register(paid)
		got, err := pool.SetCapacity(paid.node, math.MaxUint64, 0, true)
		if err != nil {
			t.Fatalf("maxCap %d: SetCapacity(MaxUint64): %v", maxCap, err)
		}
		sum, count, fits := toldSum([]*peer{free, paid})
		activeCount, activeCap := pool.Active()
		switch {
		case !fits:
			t.Errorf("maxCap %d: clients told %d and %d, past 2^64-1; Active() = (%d, %d)", maxCap, free.capacity(), paid.capacity(), activeCount, activeCap)
		case sum > maxCap:
			t.Errorf("maxCap %d: clients told %d in all", maxCap, sum)
		case sum != activeCap || count != activeCount:
			t.Errorf("maxCap %d: clients told (%d, %d), Active() = (%d, %d)", maxCap, count, sum, activeCount, activeCap)
		case got != paid.capacity() || got < 1000:
			t.Errorf("maxCap %d: SetCapacity returned %d, the paid client holds %d", maxCap, got, paid.capacity())
		}
		pool.Stop()
	}
}

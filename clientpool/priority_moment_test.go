package clientpool

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

// richNewcomerPool is the pool of issue 13's scenario: minCap 1, no connected
// bias, limits 100 clients / capacity 100, 1 token per ns of connection and 1
// per request cost unit for both balances, and five incumbents with 1e9
// tokens each holding capacity 20. Each incumbent spends its whole balance in
// one second, so the priority lower bounds over params.PriorityHorizon of all
// of them have fallen to the floor of a free client's.
func richNewcomerPool(t *testing.T) (*ClientPool, []*peer) {
	clock := &mclock.Simulated{}
	pool := NewClientPool(memorydb.New(), 1, 0, clock, nil)
	pool.SetDefaultFactors(testFactors, testFactors)
	pool.SetLimits(100, 100)
	pool.Start()
	t.Cleanup(pool.Stop)
	var incumbents []*peer
	for i := 0; i < 5; i++ {
		p := newPeer(i, time.Hour)
		addBalance(pool, p.node.ID(), 1e9)
		pool.Register(p)
		if got, err := pool.SetCapacity(p.node, 20, 0, false); err != nil || got != 20 {
			t.Fatalf("incumbent %d: SetCapacity(20) = %d, %v", i, got, err)
		}
		incumbents = append(incumbents, p)
	}
	return pool, incumbents
}

// A newcomer ten times richer than each incumbent out-ranks one of them at
// capacity c as long as 1e10/c exceeds the incumbent's 1e9/capacity: it is
// answered, and granted, far more than any incumbent keeps.
func TestARicherNewcomerOutRanksIncumbentsWhoseHorizonBoundsCollapsed(t *testing.T) {
	pool, incumbents := richNewcomerPool(t)
	x := newPeer(100, time.Hour)
	addBalance(pool, x.node.ID(), 1e10)

	answer := capQuery(t, pool, x.node.ID(), x.freeID, 0, 0, 1e9, 1e10)
	if len(answer) != 3 {
		t.Fatalf("cq answered %v", answer)
	}
	if answer[0] < 60 {
		t.Fatalf("cq answered %d to a newcomer 10x richer than five clients holding 20 each; want at least 60", answer[0])
	}
	if !(answer[1] >= answer[0] && answer[2] > answer[0]) {
		t.Fatalf("cq answers %v do not grow with the tokens added", answer)
	}

	pool.Register(x)
	if x.capacity() != 1 {
		t.Fatalf("the newcomer was not admitted: capacity %d", x.capacity())
	}
	got, err := pool.SetCapacity(x.node, 100, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if got != answer[0] {
		t.Fatalf("SetCapacity(100) granted %d, cq answered %d", got, answer[0])
	}
	caps := make([]uint64, len(incumbents))
	for i, p := range incumbents {
		caps[i] = p.capacity()
	}
	t.Logf("cq answered %v; granted %d, incumbents keep %v", answer, got, caps)
	for i, p := range incumbents {
		if c := p.capacity(); c*5 > got {
			t.Fatalf("incumbent %d keeps %d next to the newcomer's %d: its priority 1e9/%d is not a fifth of the newcomer's", i, c, got, c)
		}
	}
}

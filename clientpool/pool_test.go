package clientpool

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

func TestLoweringTheCapacityLimitCutsInQuarterSteps(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 100)
	p := newPeer(0, time.Hour)
	addBalance(pool, p.node.ID(), int64(time.Hour))
	pool.Register(p)
	pool.SetCapacity(p.node, 100, 0, false)
	pool.SetLimits(10, 60) // 100 -> 75 -> 57
	if c := p.capacity(); c != 57 {
		t.Fatalf("capacity %d after lowering maxCap to 60, want 57 (two quarter cuts)", c)
	}
	pool.SetLimits(0, 60)
	if c := p.capacity(); c != 0 || pool.Inactive() != 1 {
		t.Fatalf("capacity %d with maxCount 0, want the client inactive", c)
	}
	pool.SetLimits(1, 60)
	if c := p.capacity(); c != 1 {
		t.Fatalf("capacity %d after raising the limits, want the waiting client activated at minCap", c)
	}
}

func TestSetCapacity(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 100)
	rich, paid, free, waiting := newPeer(0, time.Hour), newPeer(1, time.Hour), newPeer(2, time.Hour), newPeer(3, time.Hour)
	addBalance(pool, rich.node.ID(), 1e15)
	addBalance(pool, paid.node.ID(), 1e12)
	pool.Register(rich)
	pool.Register(paid)
	pool.Register(free)
	if got, err := pool.SetCapacity(rich.node, 50, 0, false); err != nil || got != 50 {
		t.Fatalf("rich client SetCapacity(50) = %d, %v", got, err)
	}

	// Fix (partial grants): the original returned the old capacity (or an
	// error) when the request could not be met in full. Here 100-50-1 = 49 is
	// free and the free client can be evicted, but the rich client out-ranks
	// the paid one: it can hold 50.
	got, err := pool.SetCapacity(paid.node, 80, 0, true)
	if err != nil || got != 50 {
		t.Fatalf("partial raise: SetCapacity(80) = %d, %v; want 50, nil", got, err)
	}
	if c := paid.capacity(); c != 50 || !paid.requested[len(paid.requested)-1] {
		t.Fatalf("granted capacity reported as %d (requested %v)", c, paid.requested)
	}
	if !free.wasDisconnected() && free.capacity() != 0 {
		t.Fatalf("the free client kept its capacity")
	}
	if got, err := pool.SetCapacity(paid.node, 10, 0, true); err != nil || got != 10 {
		t.Fatalf("decrease: SetCapacity(10) = %d, %v", got, err)
	}
	if got, err := pool.SetCapacity(paid.node, 0, 0, true); err != nil || got != 1 {
		t.Fatalf("a request below minCap means minCap: got %d, %v", got, err)
	}
	if _, err := pool.SetCapacity(free.node, 5, 0, true); !errors.Is(err, ErrNoPriority) {
		t.Fatalf("free client raise: %v, want ErrNoPriority", err)
	}
	stranger := enode.SignNull(new(enr.Record), nodeID(99))
	if _, err := pool.SetCapacity(stranger, 5, 0, true); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("unknown client: %v, want ErrNotConnected", err)
	}
	pool.SetLimits(3, 100)
	pool.Register(waiting) // the free client is back in the active set
	pool.SetLimits(3, 51)
	if waiting.capacity() != 0 && free.capacity() != 0 {
		// one free client must be waiting now
		t.Fatalf("no free client inactive with limits (3, 51)")
	}
	inactive := waiting
	if waiting.capacity() != 0 {
		inactive = free
	}
	if got, err := pool.SetCapacity(inactive.node, 5, 0, true); err != nil || got != 0 {
		t.Fatalf("inactive client: SetCapacity = %d, %v; want 0, nil", got, err)
	}
}

func TestInactiveAllowance(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	pool.Register(newPeer(0, time.Hour))
	waiting := newPeer(1, 10*time.Second)
	paid := newPeer(2, 10*time.Second)
	addBalance(pool, paid.node.ID(), 1)
	pool.SetConnectedBias(time.Hour) // keep the incumbent
	pool.Register(waiting)
	pool.Register(paid)
	clock.Run(9 * time.Second)
	if waiting.wasDisconnected() {
		t.Fatalf("free client disconnected before its allowance ran out")
	}
	clock.Run(2 * time.Second)
	if !waiting.wasDisconnected() {
		t.Fatalf("free client still connected after its allowance")
	}
	clock.Run(time.Hour)
	if paid.wasDisconnected() || pool.Inactive() != 1 {
		t.Fatalf("inactive priority client did not wait")
	}
	zero := newPeer(3, 0)
	pool.Register(zero)
	if !zero.wasDisconnected() {
		t.Fatalf("a zero allowance did not disconnect before Register returned")
	}
}

func TestMaxInactiveDisconnectsTheLowestPriorityWaitingClient(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	pool.SetConnectedBias(time.Hour)
	pool.SetMaxInactive(2)
	pool.Register(newPeer(0, time.Hour))
	a, b, c := newPeer(1, time.Hour), newPeer(2, time.Hour), newPeer(3, time.Hour)
	pool.BalanceOperation(a.node.ID(), a.freeID, func(op AtomicBalanceOperator) { op.SetBalance(0, 5e9) })
	addBalance(pool, c.node.ID(), 1e9)
	pool.Register(a)
	pool.Register(b)
	if pool.Inactive() != 2 {
		t.Fatalf("%d inactive, want 2", pool.Inactive())
	}
	pool.Register(c)
	if !a.wasDisconnected() || b.wasDisconnected() || c.wasDisconnected() || pool.Inactive() != 2 {
		t.Fatalf("want the client with the largest negative balance disconnected")
	}
}

func TestSharedFreeClientIDsShareOneNegativeBalance(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 10)
	a, b := newPeer(1, time.Hour), newPeer(2, time.Hour)
	a.freeID, b.freeID = "10.0.0.1", "10.0.0.1"
	ba := pool.Register(a)
	bb := pool.Register(b)
	clock.Run(10 * time.Second)
	_, na := ba.GetBalance()
	_, nb := bb.GetBalance()
	if na != 20e9 || nb != 20e9 {
		t.Fatalf("shared negative balance reads (%d, %d), want 20e9 after both were active 10 s", na, nb)
	}
	// A balance operation on the free ID while both are connected changes the
	// shared object; no write is lost when they unregister.
	pool.BalanceOperation(nodeID(50), "10.0.0.1", func(op AtomicBalanceOperator) { op.SetBalance(0, 1e9) })
	if _, n := ba.GetBalance(); n != 1e9 {
		t.Fatalf("connected client sees negative balance %d after SetBalance, want 1e9", n)
	}
	pool.Unregister(a)
	clock.Run(time.Second)
	pool.Unregister(b)
	if _, n := balanceOf(pool, nodeID(50), "10.0.0.1"); n != 2e9 {
		t.Fatalf("stored shared negative balance %d, want 2e9", n)
	}
}

func TestToldToDisconnectClientIsNeverReactivated(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	first := newPeer(0, 0)
	pool.Register(first)
	clock.Run(10 * time.Minute)
	second := newPeer(1, 0)
	pool.Register(second) // evicts first
	if !first.wasDisconnected() || first.capacity() != 0 {
		t.Fatalf("first client not evicted")
	}
	n := len(first.updates)
	pool.SetLimits(2, 2)
	if len(first.updates) != n || pool.Inactive() != 0 {
		t.Fatalf("a disconnected client got capacity again")
	}
	if c, _ := pool.Active(); c != 1 {
		t.Fatalf("%d active, want only the second client", c)
	}
	if pool.Register(newPeer(0, 0)) != nil {
		t.Fatalf("an ID registered twice was accepted")
	}
	pool.Unregister(first)
	if pool.Register(first) == nil {
		t.Fatalf("re-registration after Unregister failed")
	}
}

func TestStoppedPoolIgnoresCalls(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	p := newPeer(0, time.Hour)
	pool.Register(p)
	pool.Stop()
	pool.Stop()
	if pool.Register(newPeer(1, time.Hour)) != nil {
		t.Fatalf("Register after Stop returned a balance")
	}
	called := false
	pool.BalanceOperation(nodeID(1), "", func(AtomicBalanceOperator) { called = true })
	if called {
		t.Fatalf("BalanceOperation ran after Stop")
	}
	if r := pool.Handle(nodeID(1), "", "info", nil); r != nil {
		t.Fatalf("Handle answered after Stop")
	}
	pool.Unregister(p)
	clock.Run(time.Hour)
}

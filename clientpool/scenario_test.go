package clientpool

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// The scenarios of issue 2: minCap 1, limits (10, 10), factors {time 1/ns,
// capacity 0, request 1} for both balances, bias 3 min unless stated.

func TestClientWithOneMinuteOfBalanceSpendsItAndThenAccruesNegativeBalance(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 10)
	p := newPeer(0, time.Minute)
	if err := addBalance(pool, p.node.ID(), int64(time.Minute)); err != nil {
		t.Fatal(err)
	}
	b := pool.Register(p)
	if p.capacity() != 1 {
		t.Fatalf("capacity %d, want 1", p.capacity())
	}
	clock.Run(time.Second)
	if pos, neg := b.GetBalance(); pos != uint64(59*time.Second) || neg != 0 {
		t.Fatalf("after 1 s: balance (%d, %d), want (59e9, 0)", pos, neg)
	}
	clock.Run(59 * time.Second)
	if pos, neg := b.GetBalance(); pos != 0 || neg != 0 {
		t.Fatalf("after 60 s: balance (%d, %d), want (0, 0)", pos, neg)
	}
	for i := uint64(1); i <= 3; i++ {
		clock.Run(time.Second)
		if pos, neg := b.GetBalance(); pos != 0 || neg != i*1e9 {
			t.Fatalf("%d s after running out: balance (%d, %d), want (0, %d)", i, pos, neg, i*1e9)
		}
	}
}

func TestFullPoolOfFreeClientsAdmitsANewcomerOnlyAfterTheConnectedBias(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 10)
	var peers []*peer
	for i := 0; i < 10; i++ {
		p := newPeer(i, 0)
		pool.Register(p)
		if p.capacity() != 1 {
			t.Fatalf("client %d not admitted to a pool with room", i)
		}
		peers = append(peers, p)
		clock.Run(time.Millisecond)
	}
	rejected := newPeer(10, 0)
	pool.Register(rejected)
	if rejected.capacity() != 0 || !rejected.wasDisconnected() {
		t.Fatalf("11th client admitted at once to a full pool")
	}
	pool.Unregister(rejected)
	clock.Run(time.Minute)
	rejected = newPeer(11, 0)
	pool.Register(rejected)
	if rejected.capacity() != 0 || !rejected.wasDisconnected() {
		t.Fatalf("client admitted after 1 minute, inside the 3 minute bias")
	}
	pool.Unregister(rejected)
	clock.Run(3 * time.Minute)
	admitted := newPeer(12, 0)
	pool.Register(admitted)
	if admitted.capacity() != 1 {
		t.Fatalf("client not admitted after 4 minutes")
	}
	if !peers[0].wasDisconnected() || peers[0].capacity() != 0 {
		t.Fatalf("the longest-connected client was not evicted")
	}
	for _, p := range peers[1:] {
		if p.wasDisconnected() {
			t.Fatalf("a client other than the longest-connected was evicted")
		}
	}
	checkInvariants(t, pool, append(peers, admitted))
}

func TestFullPoolOfPaidClientsAdmitsOnlyAClientThatOutRanksThemAfterTheBias(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 10)
	var peers []*peer
	for i := 0; i < 10; i++ {
		p := newPeer(i, time.Hour)
		addBalance(pool, p.node.ID(), int64(20*time.Second))
		pool.Register(p)
		peers = append(peers, p)
	}
	poor := newPeer(10, time.Hour)
	addBalance(pool, poor.node.ID(), int64(2*time.Second))
	pool.Register(poor)
	if poor.capacity() != 0 {
		t.Fatalf("client with 2 s of balance admitted over clients with 20 s")
	}
	rich := newPeer(11, time.Hour)
	addBalance(pool, rich.node.ID(), int64(5*time.Minute))
	pool.Register(rich)
	if rich.capacity() != 1 {
		t.Fatalf("client with 5 minutes of balance not admitted")
	}
	var evicted int
	for _, p := range peers {
		if p.capacity() == 0 {
			evicted++
		}
	}
	if evicted != 1 || pool.Inactive() != 2 {
		t.Fatalf("%d clients evicted and %d inactive, want 1 and 2", evicted, pool.Inactive())
	}
	checkInvariants(t, pool, append(peers, poor, rich))
}

func TestPaidClientWhoseBalanceRunsOutIsCutToMinCapAndATopUpRestoresIt(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 10)
	p := newPeer(0, time.Hour)
	addBalance(pool, p.node.ID(), int64(30*time.Second))
	pool.Register(p)
	if got, err := pool.SetCapacity(p.node, 5, 0, true); err != nil || got != 5 {
		t.Fatalf("SetCapacity(5) = %d, %v", got, err)
	}
	clock.Run(29 * time.Second)
	if p.capacity() != 5 {
		t.Fatalf("capacity %d before the balance ran out, want 5", p.capacity())
	}
	clock.Run(2 * time.Second)
	if p.capacity() != 1 {
		t.Fatalf("capacity %d after the balance ran out, want minCap 1", p.capacity())
	}
	if _, err := pool.SetCapacity(p.node, 5, 0, true); !errors.Is(err, ErrNoPriority) {
		t.Fatalf("raise without balance: %v, want ErrNoPriority", err)
	}
	addBalance(pool, p.node.ID(), int64(time.Hour))
	if got, err := pool.SetCapacity(p.node, 5, 0, true); err != nil || got != 5 {
		t.Fatalf("SetCapacity(5) after a top-up = %d, %v", got, err)
	}
}

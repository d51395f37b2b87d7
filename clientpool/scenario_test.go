package clientpool

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

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
	if pos, _ := b.GetBalance(); pos != uint64(59*time.Second) {
		t.Fatalf("after 1 s: pos %d, want %d", pos, uint64(59*time.Second))
	}
	clock.Run(60 * time.Second)
	pos, neg := b.GetBalance()
	if pos != 0 {
		t.Fatalf("after 61 s: pos %d, want 0", pos)
	}
	clock.Run(time.Second)
	pos, neg2 := b.GetBalance()
	if pos != 0 || neg2-neg != uint64(time.Second) {
		t.Fatalf("negative balance grew by %d in 1 s, want %d", neg2-neg, uint64(time.Second))
	}
}

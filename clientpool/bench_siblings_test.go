package clientpool_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/vflux-net/vflux/clientpool"
)

// BenchmarkRequestServedWithSiblings measures RequestServed of active free
// clients sharing one free-client ID (one address) at 1, 10 and 100 of them.
// Each step moves the simulated clock by 1 ms (so the shared balance is
// settled and the timers fire) and charges a request of the next client in
// turn. The cost per request must not grow with the number of siblings (see
// doc.go, Shared negative balances). Results in BENCHMARKS.md:
//
//	go test ./clientpool/ -run '^$' -bench RequestServedWithSiblings -benchtime 2000x -count 3
func BenchmarkRequestServedWithSiblings(b *testing.B) {
	for _, k := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("siblings=%d", k), func(b *testing.B) {
			clock := new(mclock.Simulated)
			pool := clientpool.NewClientPool(memorydb.New(), 1, 0, clock, alwaysSynced)
			pool.Start()
			defer pool.Stop()
			pool.SetLimits(uint64(k), uint64(k))
			pool.SetDefaultFactors(timeFactors, timeFactors)
			pool.SetExpirationTCs(0, 3600)
			balances := make([]clientpool.ConnectedBalance, k)
			for i := range balances {
				p := &benchPeer{node: testNode(testID(i)), freeID: "10.0.0.1"}
				if balances[i] = pool.Register(p); balances[i] == nil || p.capacity == 0 {
					b.Fatalf("sibling %d not active", i)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				clock.Run(time.Millisecond)
				balances[i%k].RequestServed(10)
			}
		})
	}
}

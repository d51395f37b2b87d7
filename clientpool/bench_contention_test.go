package clientpool_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/leveldb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/vflux"
)

// Benchmarks of the pool on a real LevelDB, where the database reads and
// writes of Register and Unregister cost microseconds, and under contention:
//
//	go test ./clientpool/ -run '^$' -bench 'OnLevelDB' -benchtime 20000x -count 3

// churnPeer is a Peer whose evictions are ignored (the churners re-register).
type churnPeer struct {
	node   *enode.Node
	freeID string
}

func (p *churnPeer) Node() *enode.Node                { return p.node }
func (p *churnPeer) FreeClientID() string             { return p.freeID }
func (p *churnPeer) InactiveAllowance() time.Duration { return time.Hour }
func (p *churnPeer) UpdateCapacity(uint64, bool)      {}
func (p *churnPeer) Disconnect()                      {}

// newLevelDBPool returns a started pool over a LevelDB in a temporary
// directory, with room for 100 active clients and every tenth of the clients
// paid (so registrations evict and balances are written both ways).
func newLevelDBPool(b *testing.B, clients int) (*clientpool.ClientPool, []*churnPeer) {
	db, err := leveldb.New(b.TempDir(), 16, 16, "", false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	pool := clientpool.NewClientPool(db, 1, 0, mclock.System{}, alwaysSynced)
	pool.Start()
	b.Cleanup(pool.Stop)
	pool.SetLimits(100, 100)
	pool.SetDefaultFactors(timeFactors, timeFactors)
	peers := make([]*churnPeer, clients)
	for i := range peers {
		peers[i] = &churnPeer{node: testNode(testID(i)), freeID: fmt.Sprintf("f%d", i)}
		if i%10 == 0 {
			if _, _, err := pool.AddBalance(peers[i].node.ID(), "", 1e12); err != nil {
				b.Fatal(err)
			}
		}
	}
	return pool, peers
}

// BenchmarkRegisterUnregisterOnLevelDB measures one Register and Unregister
// of a client with stored balances, on one goroutine.
func BenchmarkRegisterUnregisterOnLevelDB(b *testing.B) {
	pool, peers := newLevelDBPool(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := peers[i%len(peers)]
		pool.Register(p)
		pool.Unregister(p)
	}
}

// BenchmarkCapacityQueryDuringChurnOnLevelDB measures a capacity query while
// churners goroutines register and unregister clients as fast as they can:
// what a query waits for the pool lock behind Register/Unregister.
func BenchmarkCapacityQueryDuringChurnOnLevelDB(b *testing.B) {
	for _, churners := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("churners=%d", churners), func(b *testing.B) {
			pool, peers := newLevelDBPool(b, 1000)
			query := encodeCapQuery(0, 0, 1e9)
			asker := testID(1 << 30) // not connected
			var (
				stop  atomic.Bool
				churn atomic.Int64
				wg    sync.WaitGroup
			)
			for g := range churners {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; !stop.Load(); i += churners {
						p := peers[i%len(peers)]
						pool.Register(p)
						pool.Unregister(p)
						churn.Add(1)
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if pool.Handle(asker, "10.9.9.9", vflux.CapacityQueryName, query) == nil {
					b.Fatal("no reply to the capacity query")
				}
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(churn.Load())/b.Elapsed().Seconds(), "churns/s")
		})
	}
}

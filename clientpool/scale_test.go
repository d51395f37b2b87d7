package clientpool

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/leveldb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

// scaleEnv turns on the big scale runs: 10k, 100k and 1M tracked clients and
// stored balances (several minutes, a few GiB of memory at 1M). Without it
// the tests run at 10k only (the CI run).
const scaleEnv = "VFLUX_SCALE"

func scaleSizes() []int {
	if os.Getenv(scaleEnv) != "" {
		return []int{10_000, 100_000, 1_000_000}
	}
	return []int{10_000}
}

// scalePeer is the smallest Peer: the test allocates it before measuring, so
// the pool's own memory per client is what is measured.
type scalePeer struct {
	node   *enode.Node
	freeID string
}

func (p *scalePeer) Node() *enode.Node                { return p.node }
func (p *scalePeer) FreeClientID() string             { return p.freeID }
func (p *scalePeer) InactiveAllowance() time.Duration { return time.Hour }
func (p *scalePeer) UpdateCapacity(uint64, bool)      {}
func (p *scalePeer) Disconnect()                      {}

func scaleID(i int) enode.ID {
	var id enode.ID
	id[0], id[1], id[2], id[3], id[31] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i), 0x5c
	return id
}

// writeScaleBalances stores n positive balances of 1e9+i tokens in db and
// returns their sum.
func writeScaleBalances(t testing.TB, db ethdb.KeyValueStore, n int) uint64 {
	t.Helper()
	st := store{db: db}
	var sum uint64
	b := st.newBatch()
	for i := range n {
		var v ExpiredValue
		v.Add(int64(1_000_000_000+i), 0)
		b.putPos(scaleID(i), v)
		sum += uint64(1_000_000_000 + i)
		if (i+1)%10_000 == 0 || i == n-1 {
			if err := b.write(0, 0); err != nil {
				t.Fatal(err)
			}
			b = st.newBatch()
		}
	}
	return sum
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryPerTrackedClient registers n clients (all active) and measures
// the pool's heap growth per client, for free clients (no positive balance,
// each with its own negative balance) and for paid clients (a stored positive
// balance, so each also has a balance timer armed). SPEC 3.4 asks for a few
// hundred bytes per tracked client; the test fails above 2 KiB.
func TestMemoryPerTrackedClient(t *testing.T) {
	for _, n := range scaleSizes() {
		for _, paid := range []bool{false, true} {
			kind := "free"
			if paid {
				kind = "paid"
			}
			t.Run(fmt.Sprintf("%d %s clients", n, kind), func(t *testing.T) {
				db := memorydb.New()
				if paid {
					writeScaleBalances(t, db, n)
				}
				peers := make([]*scalePeer, n)
				for i := range peers {
					id := scaleID(i)
					peers[i] = &scalePeer{node: enode.SignNull(new(enr.Record), id),
						freeID: fmt.Sprintf("10.%d.%d.%d", byte(i>>16), byte(i>>8), byte(i))}
				}
				clock := &mclock.Simulated{}
				pool := NewClientPool(db, 1, time.Minute, clock, nil)
				pool.SetLimits(uint64(n), uint64(n))
				factors := PriceFactors{TimeFactor: 0, CapacityFactor: 1, RequestFactor: 1}
				pool.SetDefaultFactors(factors, factors)
				pool.Start()
				defer pool.Stop()

				before := heapAfterGC()
				start := time.Now()
				for _, p := range peers {
					if pool.Register(p) == nil {
						t.Fatal("Register refused a client")
					}
				}
				elapsed := time.Since(start)
				after := heapAfterGC()
				if count, _ := pool.Active(); count != uint64(n) {
					t.Fatalf("%d active, want all %d", count, n)
				}
				if paid {
					var pos uint64
					pool.BalanceOperation(scaleID(n-1), peers[n-1].freeID, func(op AtomicBalanceOperator) { pos, _ = op.GetBalance() })
					if pos < 1_000_000_000 {
						t.Fatalf("a paid client's balance is %d, want its stored 1e9+", pos)
					}
				}
				per := float64(int64(after)-int64(before)) / float64(n)
				t.Logf("%d %s clients: %.0f bytes per tracked client (heap %+.1f MiB), Register %.2f us each",
					n, kind, per, float64(int64(after)-int64(before))/(1<<20), float64(elapsed.Microseconds())/float64(n))
				if per > 2048 {
					t.Errorf("%.0f bytes per tracked %s client, want at most 2 KiB", per, kind)
				}
				runtime.KeepAlive(peers)
			})
		}
	}
}

// TestStartupWithManyStoredBalances stores n positive balances in a LevelDB on
// disk, closes it, then measures opening it and creating the pool (which
// totals every stored balance); the total must be exact.
func TestStartupWithManyStoredBalances(t *testing.T) {
	for _, n := range scaleSizes() {
		t.Run(fmt.Sprintf("%d stored balances", n), func(t *testing.T) {
			dir := t.TempDir()
			db, err := leveldb.New(dir, 16, 64, "", false)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			want := writeScaleBalances(t, db, n)
			written := time.Since(start)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			start = time.Now()
			db, err = leveldb.New(dir, 16, 64, "", false)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			opened := time.Since(start)
			start = time.Now()
			pool := NewClientPool(db, 1, time.Minute, &mclock.Simulated{}, nil)
			totalled := time.Since(start)
			defer pool.Stop()
			if got := pool.TotalTokenAmount(); got != want {
				t.Fatalf("total %d, want %d", got, want)
			}
			start = time.Now()
			ids := pool.GetPosBalanceIDs(scaleID(n/2), enode.ID{}, 100)
			listed := time.Since(start)
			if len(ids) != min(100, n-n/2) || ids[0] != scaleID(n/2) {
				t.Fatalf("GetPosBalanceIDs from the middle returned %d IDs starting at %x", len(ids), ids[0][:4])
			}
			t.Logf("%d stored balances: written in %v, LevelDB opened in %v, pool created and total summed in %v (%.2f us per record), 100 IDs listed in %v",
				n, written.Round(time.Millisecond), opened.Round(time.Millisecond), totalled.Round(time.Millisecond),
				float64(totalled.Microseconds())/float64(n), listed.Round(time.Microsecond))
		})
	}
}

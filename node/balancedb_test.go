package node

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/dbtest"
	"github.com/ethereum/go-ethereum/ethdb/leveldb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/vflux-net/vflux/clientpool"
)

func openTestBalanceDB(t testing.TB, dir string) *balanceDB {
	t.Helper()
	db, err := openBalanceLevelDB(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestBalanceDBBehavesAsAnEthdbKeyValueStore(t *testing.T) {
	dbtest.TestDatabaseSuite(t, func() ethdb.KeyValueStore { return openTestBalanceDB(t, t.TempDir()) })
}

func TestATopUpIsWrittenSyncedAndReadBackAfterReopeningTheDatabase(t *testing.T) {
	dir := t.TempDir()
	db := openTestBalanceDB(t, dir)
	clock := &mclock.Simulated{}
	pool := clientpool.NewClientPool(db, 1, 0, clock, nil)
	pool.SetLimits(1, 1)
	pool.SetDefaultFactors(clientpool.PriceFactors{TimeFactor: 1}, clientpool.PriceFactors{TimeFactor: 1})
	pool.Start()
	paid := enode.ID{1}
	if _, _, err := pool.AddBalance(paid, "", 5e12); err != nil {
		t.Fatal(err)
	}
	if n := db.syncedWrites.Load(); n != 1 {
		t.Fatalf("%d synced writes when AddBalance returned, want 1 (the top-up)", n)
	}
	// A free client's debt and the periodic writes are not synced.
	p := gaugePeer{n: enode.SignNull(new(enr.Record), enode.ID{2})}
	if pool.Register(p) == nil {
		t.Fatal("Register refused")
	}
	clock.Run(2 * time.Minute)
	pool.Unregister(p)
	pool.Stop() // writes everything
	if n := db.syncedWrites.Load(); n != 1 {
		t.Fatalf("%d synced writes after spending and Stop, want still 1", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTestBalanceDB(t, dir)
	defer db.Close()
	pool = clientpool.NewClientPool(db, 1, 0, clock, nil)
	defer pool.Stop()
	if got := pool.TotalTokenAmount(); got != 5e12 {
		t.Fatalf("total %d after reopening, want the top-up's 5e12", got)
	}
	if old, _, err := pool.AddBalance(paid, "", 1); err != nil || old != 5e12 {
		t.Fatalf("balance %d (%v) after reopening, want 5e12", old, err)
	}
	var debt uint64
	pool.BalanceOperation(p.n.ID(), p.FreeClientID(), func(op clientpool.AtomicBalanceOperator) { _, debt = op.GetBalance() })
	if debt != uint64(2*time.Minute) {
		t.Fatalf("free client's debt %d after reopening, want %d", debt, uint64(2*time.Minute))
	}
}

// unsyncedDB hides WriteSync from balanceDB's batches, so the pool writes its
// top-ups unsynced: the adapter's own cost, without the fsync.
type unsyncedDB struct{ *balanceDB }

func (d unsyncedDB) NewBatch() ethdb.Batch { return struct{ ethdb.Batch }{d.balanceDB.NewBatch()} }

// BenchmarkTopUp measures ClientPool.AddBalance for clients that are not
// connected (a read and one batch write each) over a real LevelDB in a temp
// directory: go-ethereum's ethdb/leveldb wrapper (unsynced, what the node used
// before), balanceDB with the write unsynced, and balanceDB as the node uses
// it (top-ups synced: the journal is fsynced before AddBalance returns).
func BenchmarkTopUp(b *testing.B) {
	dbs := []struct {
		name string
		open func(dir string) ethdb.KeyValueStore
	}{
		{"geth-leveldb-unsynced", func(dir string) ethdb.KeyValueStore {
			db, err := leveldb.New(dir, 16, 16, "bench/vflux/", false)
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
		{"balancedb-unsynced", func(dir string) ethdb.KeyValueStore { return unsyncedDB{openTestBalanceDB(b, dir)} }},
		{"balancedb-synced", func(dir string) ethdb.KeyValueStore { return openTestBalanceDB(b, dir) }},
	}
	for _, d := range dbs {
		b.Run(d.name, func(b *testing.B) {
			db := d.open(b.TempDir())
			defer db.Close()
			pool := clientpool.NewClientPool(db, 1, 0, &mclock.Simulated{}, nil)
			defer pool.Stop()
			i := 0
			for b.Loop() {
				if _, _, err := pool.AddBalance(enode.ID{byte(i), byte(i >> 8)}, "", 1e9); err != nil {
					b.Fatal(err)
				}
				i = (i + 1) % 1000
			}
		})
	}
}

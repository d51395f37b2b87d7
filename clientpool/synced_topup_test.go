package clientpool

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

// syncingDB is a memorydb whose batches are SyncedBatches; it records, for
// every batch written, whether it was written with WriteSync and its keys.
type syncingDB struct {
	*memorydb.Database
	mu     sync.Mutex
	writes []syncedWrite
}

type syncedWrite struct {
	synced bool
	keys   []string
}

func (w syncedWrite) String() string { return fmt.Sprintf("{synced: %v, keys: %q}", w.synced, w.keys) }

type syncingBatch struct {
	ethdb.Batch
	db   *syncingDB
	keys []string
}

func (d *syncingDB) NewBatch() ethdb.Batch {
	return &syncingBatch{Batch: d.Database.NewBatch(), db: d}
}

func (b *syncingBatch) Put(k, v []byte) error {
	b.keys = append(b.keys, string(k))
	return b.Batch.Put(k, v)
}

func (b *syncingBatch) Delete(k []byte) error {
	b.keys = append(b.keys, string(k))
	return b.Batch.Delete(k)
}

func (b *syncingBatch) Write() error     { return b.write(false) }
func (b *syncingBatch) WriteSync() error { return b.write(true) }

func (b *syncingBatch) write(synced bool) error {
	b.db.mu.Lock()
	b.db.writes = append(b.db.writes, syncedWrite{synced: synced, keys: b.keys})
	b.db.mu.Unlock()
	return b.Batch.Write()
}

// since returns the writes recorded from index i on.
func (d *syncingDB) since(i int) []syncedWrite {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]syncedWrite(nil), d.writes[i:]...)
}

func TestTopUpsAreWrittenSyncedAndNothingElseIs(t *testing.T) {
	db := &syncingDB{Database: memorydb.New()}
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	offline, p := nodeID(1), newPeer(2, time.Hour)

	// Each top-up is one synced write holding its key, done when it returns.
	topUps := []struct {
		name string
		key  []byte
		do   func() error
	}{
		{"AddBalance of a client that is not connected", posKey(offline), func() error {
			_, _, err := pool.AddBalance(offline, "", 5e9)
			return err
		}},
		{"SetBalance of a client that is not connected", negKey("10.0.0.1"), func() (err error) {
			pool.BalanceOperation(offline, "10.0.0.1", func(op AtomicBalanceOperator) { err = op.SetBalance(6e9, 2e9) })
			return err
		}},
		{"AddBalance of a connected client", posKey(p.node.ID()), func() error {
			if pool.Register(p) == nil {
				t.Fatal("Register refused")
			}
			writtenNow(pool)
			_, _, err := pool.AddBalance(p.node.ID(), p.freeID, 5e9)
			return err
		}},
	}
	for _, tu := range topUps {
		before := len(db.since(0))
		if err := tu.do(); err != nil {
			t.Fatalf("%s: %v", tu.name, err)
		}
		w := db.since(before)
		if len(w) != 1 || !w[0].synced || !slices.Contains(w[0].keys, string(tu.key)) {
			t.Fatalf("%s: writes when it returned %v, want one synced write of %q", tu.name, w, tu.key)
		}
	}

	// Spending, debt, Unregister and Stop are written unsynced.
	before := len(db.since(0))
	clock.Run(2 * time.Minute)
	pool.Unregister(p)
	pool.Stop()
	w := db.since(before)
	if len(w) == 0 {
		t.Fatal("no writes of the spending")
	}
	for _, x := range w {
		if x.synced {
			t.Fatalf("a write of spending or debt was synced: %v", x)
		}
	}
}

package clientpool

import (
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

func TestTopUpsAreWrittenSyncedAndNothingElseIs(t *testing.T) {
	db := &recordingDB{KeyValueStore: memorydb.New()}
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

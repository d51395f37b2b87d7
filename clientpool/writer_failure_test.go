package clientpool

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Tests of the background writer's failure paths and of properties the gated
// tests in writer_test.go only catch by timing: holdWriter keeps queued
// batches queued, deterministically.

// holdWriter marks the store's writer as running so queued batches stay
// queued (no goroutine is started); release lets the next queue start one.
func holdWriter(st *store, hold bool) {
	st.mu.Lock()
	st.running = hold
	st.mu.Unlock()
}

func TestAFailedTopUpDoesNotDropAnotherClientsQueuedDebt(t *testing.T) {
	db := newFailingDB()
	pool, clock, peers := clientsConnectedFor(t, db, 1, time.Minute)
	x := peers[0]
	writtenNow(pool)
	holdWriter(&pool.st, true) // x's final debt stays queued
	clock.Run(time.Second)
	pool.Unregister(x) // queues x's debt: 61e9
	const want = uint64(61 * time.Second)

	// An unrelated top-up fails: it must be undone, nothing else.
	db.fail.Store(true)
	if _, _, err := pool.AddBalance(nodeID(2), "", 5e9); !errors.Is(err, errDiskFull) {
		t.Fatalf("AddBalance error %v, want the write error", err)
	}
	db.fail.Store(false)
	holdWriter(&pool.st, false)

	if _, neg := balanceOf(pool, x.node.ID(), x.freeID); neg != want {
		t.Errorf("x's debt read by the pool after another client's failed top-up: %d, want %d", neg, want)
	}
	writtenNow(pool)
	if v, _ := storedValue(t, db, negKey(x.freeID)); v.Value(0) != want {
		t.Errorf("x's debt on disk once the disk works again: %d, want %d", v.Value(0), want)
	}
}

func TestAReadAheadTakenWhileItsKeyIsBeingWrittenIsReReadAfterTheWrite(t *testing.T) {
	val := func(n uint64) ExpiredValue { var v ExpiredValue; v.Add(int64(n), 0); return v }
	db := newGatedDB()
	st := &store{db: db}
	id := nodeID(3)
	b := st.newBatch()
	b.putPos(id, val(100))
	if err := b.write(0, 0); err != nil {
		t.Fatal(err)
	}
	db.closed.Store(true)
	b = st.newBatch()
	b.putPos(id, val(200))
	b.queue(0, 0)
	within(t, db.entered, "the write of 200 reaching the disk")
	r := st.readAhead(posKey(id)) // the disk still holds 100
	db.open()
	st.writers.Wait() // 200 is on disk, nothing pending
	if got, err := st.use(r); err != nil || got.Value(0) != 200 {
		t.Fatalf("use = %d, %v after the write ended, want 200", got.Value(0), err)
	}
}

func TestGetPosBalanceIDsDoesNotListABalanceWhoseDropIsStillQueued(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 1, 1)
	slow := PriceFactors{TimeFactor: 1e-6} // 1000 tokens per second
	pool.SetDefaultFactors(slow, slow)
	p := newPeer(1, time.Hour)
	if err := addBalance(pool, p.node.ID(), 1.5e6); err != nil {
		t.Fatal(err)
	}
	pool.Register(p)
	holdWriter(&pool.st, true)  // the drop below stays queued
	clock.Run(10 * time.Minute) // spends 0.6e6: 0.9e6 is dropped, its deletion queued
	if ids := pool.GetPosBalanceIDs(enode.ID{}, enode.ID{}, 10); len(ids) != 0 {
		t.Fatalf("GetPosBalanceIDs = %v while the drop is queued, want none", ids)
	}
	holdWriter(&pool.st, false)
}

func TestATopUpIsNotOverwrittenByAnOlderQueuedWriteOfTheSameBalance(t *testing.T) {
	db := newGatedDB()
	pool, p := paidClientThatSpent(t, db)
	holdWriter(&pool.st, true) // the 90e9 below stays queued, deterministically
	pool.Unregister(p)
	if old, nw, err := pool.AddBalance(p.node.ID(), "", 1e9); err != nil || old != 90e9 || nw != 91e9 {
		t.Fatalf("AddBalance = %d -> %d, %v; want 90e9 -> 91e9", old, nw, err)
	}
	holdWriter(&pool.st, false)
	writtenNow(pool) // whatever is still queued lands now
	if v, _ := storedValue(t, db, posKey(p.node.ID())); v.Value(0) != 91e9 {
		t.Fatalf("stored balance %d after every queued write, want the top-up's 91e9", v.Value(0))
	}
}

func TestStopWritesQueuedBalancesItselfWhenNoWriterRuns(t *testing.T) {
	db := newGatedDB()
	pool, _, peers := clientsConnectedFor(t, db, 5, time.Second)
	holdWriter(&pool.st, true) // no background writer: only Stop can write these
	for _, p := range peers {
		pool.Unregister(p)
	}
	pool.Stop()
	for _, p := range peers {
		if v, ok := storedValue(t, db, negKey(p.freeID)); !ok || v.Value(0) != uint64(time.Second) {
			t.Fatalf("debt stored as %d when Stop returned, want %d", v.Value(0), uint64(time.Second))
		}
	}
}

func TestAFailedBackgroundWriteIsWrittenByTheNextOne(t *testing.T) {
	db := newFailingDB()
	pool, _, peers := clientsConnectedFor(t, db, 1, time.Second)
	x := peers[0]
	db.fail.Store(true)
	pool.Unregister(x)     // queues 1e9 of debt; the writer's write fails
	pool.st.writers.Wait() // the writer gave up
	db.fail.Store(false)
	const want = uint64(time.Second)
	if _, neg := balanceOf(pool, x.node.ID(), x.freeID); neg != want {
		t.Errorf("x's debt read by the pool after a failed write: %d, want %d", neg, want)
	}
	writtenNow(pool)
	if v, _ := storedValue(t, db, negKey(x.freeID)); v.Value(0) != want {
		t.Errorf("x's debt on disk once the disk works again: %d, want %d", v.Value(0), want)
	}
}

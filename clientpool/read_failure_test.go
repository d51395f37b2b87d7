package clientpool

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// A failed database read is not "no balance": whatever was decided from a
// zero read would be written over the stored, maybe paid, balance.

// errDiskRead is the read error of unreadableDB.
var errDiskRead = errors.New("disk read error")

// unreadableDB is a failingDB (writes fail while fail is set) whose reads,
// Get and Has alike, fail while failReads is set: a disk that cannot be read.
type unreadableDB struct {
	*failingDB
	failReads atomic.Bool
}

func newUnreadableDB() *unreadableDB { return &unreadableDB{failingDB: newFailingDB()} }

func (d *unreadableDB) Get(key []byte) ([]byte, error) {
	if d.failReads.Load() {
		return nil, errDiskRead
	}
	return d.failingDB.Get(key)
}

func (d *unreadableDB) Has(key []byte) (bool, error) {
	if d.failReads.Load() {
		return false, errDiskRead
	}
	return d.failingDB.Has(key)
}

func TestAClientWhoseBalanceCannotBeReadIsRefusedAndItsBalanceKept(t *testing.T) {
	db := newUnreadableDB()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 2, 2)
	paid, fresh := newPeer(1, time.Hour), newPeer(2, time.Hour)
	if _, _, err := pool.AddBalance(paid.node.ID(), "", 5e9); err != nil {
		t.Fatal(err)
	}

	db.failReads.Store(true)
	for _, p := range []*peer{paid, fresh} { // a stored balance, and none: neither can be told
		if pool.Register(p) != nil {
			t.Fatalf("Register of %v returned a balance while it cannot be read, want nil", p.node.ID())
		}
		if len(p.updates) != 0 || p.wasDisconnected() {
			t.Fatalf("refused peer was told %v (disconnected: %v), want nothing", p.updates, p.wasDisconnected())
		}
	}
	if n, _ := pool.Active(); n != 0 {
		t.Fatalf("%d active clients after refusing both, want 0", n)
	}
	clock.Run(2 * time.Minute) // periodic writes: nothing of the refused clients
	db.failReads.Store(false)
	writtenNow(pool)
	if v, _ := storedValue(t, db, posKey(paid.node.ID())); v.Value(0) != 5e9 {
		t.Fatalf("stored balance %d after the refused connection, want 5e9", v.Value(0))
	}
	if _, ok := storedValue(t, db, negKey(paid.freeID)); ok {
		t.Fatal("a refused client's negative balance was written")
	}

	if pool.Register(paid) == nil {
		t.Fatal("Register refused once the disk reads again")
	}
	if pos, _ := balanceOf(pool, paid.node.ID(), paid.freeID); pos != 5e9 {
		t.Fatalf("balance %d once connected, want the paid 5e9", pos)
	}
}

func TestATopUpOfABalanceThatCannotBeReadFailsAndWritesNothing(t *testing.T) {
	db := newUnreadableDB()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	id := nodeID(1)
	if _, _, err := pool.AddBalance(id, "", 5e9); err != nil {
		t.Fatal(err)
	}
	total := pool.TotalTokenAmount()

	db.failReads.Store(true)
	if _, _, err := pool.AddBalance(id, "", 1e9); !errors.Is(err, errDiskRead) {
		t.Fatalf("AddBalance error %v while the balance cannot be read, want the read error", err)
	}
	ran := false
	pool.BalanceOperation(id, "10.0.0.1", func(op AtomicBalanceOperator) { ran = true })
	if ran {
		t.Fatal("BalanceOperation ran its callback on a balance that could not be read")
	}
	if _, ok := pool.balanceQuery(id, ""); ok {
		t.Fatal("a balance query was answered from a balance that could not be read")
	}
	db.failReads.Store(false)

	writtenNow(pool)
	if v, _ := storedValue(t, db, posKey(id)); v.Value(0) != 5e9 {
		t.Fatalf("stored balance %d after the failed top-up, want 5e9", v.Value(0))
	}
	if got := pool.TotalTokenAmount(); got != total {
		t.Fatalf("total %d after the failed top-up, want %d", got, total)
	}
	if _, got, err := pool.AddBalance(id, "", 1e9); err != nil || got != 6e9 {
		t.Fatalf("AddBalance = %d, %v once the disk reads again, want 6e9", got, err)
	}
}

func TestAReadUnderThePoolLockThatFailsIsAnError(t *testing.T) {
	val := func(n uint64) ExpiredValue { var v ExpiredValue; v.Add(int64(n), 0); return v }
	db := newUnreadableDB()
	st := &store{db: db}
	id := nodeID(3)
	write := func(n uint64) {
		b := st.newBatch()
		b.putPos(id, val(n))
		if err := b.write(0, 0); err != nil {
			t.Fatal(err)
		}
	}
	write(100)

	// Read ahead fine, then the key is written again (the read is stale) and
	// the disk stops reading: use must re-read, and report that read's failure.
	r := st.readAhead(posKey(id))
	write(200)
	db.failReads.Store(true)
	if v, err := st.use(r); !errors.Is(err, errDiskRead) {
		t.Fatalf("use = %d, %v after a failed re-read, want the read error", v.Value(0), err)
	}

	// A failed read ahead is the error when it is the value to use...
	r = st.readAhead(posKey(id))
	if r.err == nil {
		t.Fatal("readAhead of an unreadable key has no error")
	}
	if _, err := st.use(r); !errors.Is(err, errDiskRead) {
		t.Fatalf("use of a failed read ahead: %v, want the read error", err)
	}
	// ...but not when a newer decided value waits in the queue.
	holdWriter(st, true)
	b := st.newBatch()
	b.putPos(id, val(300))
	b.queue(0, 0)
	if v, err := st.use(r); err != nil || v.Value(0) != 300 {
		t.Fatalf("use = %d, %v with 300 queued, want 300", v.Value(0), err)
	}
	holdWriter(st, false)
	db.failReads.Store(false)

	// A missing key is zero, not an error.
	if v, err := st.loadPos(nodeID(4)); err != nil || !v.IsZero() {
		t.Fatalf("loadPos of a missing key = %v, %v; want zero, nil", v, err)
	}
}

// The expiration offsets go into every write batch, so a pool that could not
// read them must not write anything: it starts stopped and says why.
func TestAPoolWhoseOffsetsCannotBeReadRefusesAllWorkAndWritesNothing(t *testing.T) {
	db := newUnreadableDB()
	clock := &mclock.Simulated{}
	first := NewClientPool(db, 1, 0, clock, nil)
	first.SetExpirationTCs(0, 3600)
	first.Start()
	clock.Run(time.Hour)
	first.Stop()
	stored, err := db.Get(offsetsKey())
	if err != nil || len(stored) == 0 {
		t.Fatalf("offsets not stored by the first pool: %x, %v", stored, err)
	}

	db.failReads.Store(true)
	pool := NewClientPool(db, 1, 0, clock, nil)
	if !errors.Is(pool.Err(), errDiskRead) {
		t.Fatalf("Err() = %v, want the read error", pool.Err())
	}
	pool.SetLimits(10, 10)
	pool.Start()
	if bal := pool.Register(newPeer(1, time.Hour)); bal != nil {
		t.Fatal("a pool that could not read its offsets registered a client")
	}
	if _, _, err := pool.AddBalance(newPeer(2, 0).node.ID(), "", 5e9); err == nil {
		t.Fatal("a pool that could not read its offsets took a top-up")
	}
	pool.Stop()
	db.failReads.Store(false)
	if after, _ := db.Get(offsetsKey()); !bytes.Equal(after, stored) {
		t.Fatalf("the stored offsets changed from %x to %x", stored, after)
	}
}

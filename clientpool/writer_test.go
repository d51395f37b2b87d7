package clientpool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// gatedDB is a memorydb whose batch writes stop at a gate while it is closed:
// the seam where a real disk is slow. Every stopped write is announced on
// entered; open lets them all through.
type gatedDB struct {
	*memorydb.Database
	closed  atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	gets    atomic.Int64
}

func newGatedDB() *gatedDB {
	return &gatedDB{Database: memorydb.New(), entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (d *gatedDB) open() {
	d.closed.Store(false)
	d.once.Do(func() { close(d.release) })
}

func (d *gatedDB) Get(key []byte) ([]byte, error) {
	d.gets.Add(1)
	return d.Database.Get(key)
}

func (d *gatedDB) NewBatch() ethdb.Batch { return &gatedBatch{Batch: d.Database.NewBatch(), db: d} }

type gatedBatch struct {
	ethdb.Batch
	db *gatedDB
}

func (b *gatedBatch) Write() error {
	if b.db.closed.Load() {
		b.db.entered <- struct{}{}
		<-b.db.release
	}
	return b.Batch.Write()
}

// within fails the test unless ch delivers before the deadline.
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10 s", what)
	}
}

func TestUnregisterReturnsWhileItsBalanceWriteWaitsForTheDisk(t *testing.T) {
	db := newGatedDB()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	p := newPeer(1, time.Hour)
	pool.Register(p)
	clock.Run(time.Minute) // the periodic pass stores 60e9 of debt (1 token/ns)
	writtenNow(pool)
	clock.Run(time.Second) // 61e9 decided, 60e9 on disk
	const debt = uint64(61 * time.Second)
	db.closed.Store(true)
	defer db.open()

	unregistered := make(chan struct{})
	go func() { pool.Unregister(p); close(unregistered) }()
	within(t, db.entered, "the debt write reaching the disk")
	within(t, unregistered, "Unregister returning while the disk write is stuck")
	if n, _ := pool.Active(); n != 0 {
		t.Fatalf("%d active clients after Unregister, want 0", n)
	}

	// The pool reads what it decided, not what is on disk yet.
	if pool.Register(p) == nil {
		t.Fatal("re-register refused")
	}
	if _, neg := balanceOf(pool, p.node.ID(), p.freeID); neg != debt {
		t.Fatalf("re-registered client's debt %d while its write waits, want %d (not the %d on disk)", neg, debt, uint64(time.Minute))
	}
	db.open()
	pool.Unregister(p)
	pool.Stop()
	if v, ok := storedValue(t, db, negKey(p.freeID)); !ok || v.Value(0) != debt {
		t.Fatalf("debt stored as %d after Stop, want %d", v.Value(0), debt)
	}
}

// paidClientThatSpent returns a pool over db with one connected client that
// got 100e9 tokens and spent 10e9 of them (10 s at 1 token/ns).
func paidClientThatSpent(t *testing.T, db ethdb.KeyValueStore) (*ClientPool, *peer) {
	t.Helper()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	p := newPeer(1, time.Hour)
	if err := addBalance(pool, p.node.ID(), 100e9); err != nil {
		t.Fatal(err)
	}
	pool.Register(p)
	clock.Run(10 * time.Second)
	return pool, p
}

func TestATopUpLandsAfterTheQueuedWriteOfTheSameBalance(t *testing.T) {
	db := newGatedDB()
	pool, p := paidClientThatSpent(t, db)
	spent, _ := balanceOf(pool, p.node.ID(), p.freeID)
	if spent != 90e9 {
		t.Fatalf("balance %d after 10 s, want 90e9", spent)
	}
	writtenNow(pool)
	db.closed.Store(true)
	defer db.open()
	pool.Unregister(p) // queues 90e9; the writer stops at the gate
	within(t, db.entered, "the spending write reaching the disk")

	type result struct {
		old, new uint64
		err      error
	}
	topUp := make(chan result, 1)
	go func() {
		var r result
		r.old, r.new, r.err = pool.AddBalance(p.node.ID(), "", 1e9)
		topUp <- r
	}()
	// The top-up may only be confirmed once it is on disk, after the stuck
	// write: open the gate and wait for the confirmation.
	db.open()
	var r result
	select {
	case r = <-topUp:
	case <-time.After(10 * time.Second):
		t.Fatal("AddBalance did not return within 10 s")
	}
	if r.err != nil || r.old != 90e9 || r.new != 91e9 {
		t.Fatalf("AddBalance = %d -> %d, %v; want 90e9 -> 91e9", r.old, r.new, r.err)
	}
	// On disk at once: the queued 90e9 did not overwrite it.
	if v, _ := storedValue(t, db, posKey(p.node.ID())); v.Value(0) != 91e9 {
		t.Fatalf("stored balance %d right after the top-up returned, want 91e9", v.Value(0))
	}
	writtenNow(pool)
	if v, _ := storedValue(t, db, posKey(p.node.ID())); v.Value(0) != 91e9 {
		t.Fatalf("stored balance %d after every queued write, want 91e9", v.Value(0))
	}
}

// clientsConnectedFor returns a pool over db with room for n clients and n
// free clients that have been connected for d (each owes d in tokens).
func clientsConnectedFor(t *testing.T, db ethdb.KeyValueStore, n int, d time.Duration) (*ClientPool, *mclock.Simulated, []*peer) {
	t.Helper()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, uint64(n), uint64(n))
	peers := make([]*peer, n)
	for i := range peers {
		peers[i] = newPeer(i, time.Hour)
		pool.Register(peers[i])
	}
	clock.Run(d)
	return pool, clock, peers
}

func TestStopWritesEveryQueuedBalanceBeforeItReturns(t *testing.T) {
	db := newGatedDB()
	pool, _, peers := clientsConnectedFor(t, db, 50, time.Second)
	writtenNow(pool)
	db.closed.Store(true)
	defer db.open()
	for _, p := range peers {
		pool.Unregister(p)
	}
	within(t, db.entered, "a debt write reaching the disk")
	db.open()
	pool.Stop()
	for _, p := range peers {
		if v, ok := storedValue(t, db, negKey(p.freeID)); !ok || v.Value(0) != uint64(time.Second) {
			t.Fatalf("client %d: debt stored as %d when Stop returned, want %d", p.node.ID()[31], v.Value(0), uint64(time.Second))
		}
	}
}

func TestAReadAheadIsReusedOnlyWhileNoWriteToItsKeyEnded(t *testing.T) {
	val := func(n uint64) ExpiredValue { var v ExpiredValue; v.Add(int64(n), 0); return v }
	put := func(st *store, id enode.ID, n uint64) *writeBatch {
		b := st.newBatch()
		b.putPos(id, val(n))
		return b
	}
	id := nodeID(3)
	for _, tc := range []struct {
		name      string
		between   func(st *store) // runs after the read ahead, before use
		want      uint64
		wantReads int64 // database reads by use
	}{
		{"with no write since, the value read ahead is used without another read",
			func(st *store) {}, 100, 0},
		{"a write queued since is what use returns",
			func(st *store) {
				st.running = true // no writer: the value stays queued
				put(st, id, 200).queue(0, 0)
			}, 200, 0},
		{"a write being written since is what use returns",
			func(st *store) {
				db := st.db.(*gatedDB)
				db.closed.Store(true)
				put(st, id, 250).queue(0, 0)
				within(t, db.entered, "the write reaching the disk")
			}, 250, 0},
		{"a write that reached the disk since makes use read again",
			func(st *store) {
				if err := put(st, id, 300).write(0, 0); err != nil {
					panic(err)
				}
			}, 300, 1},
		{"a write to another key only re-reads when it shares the stamp bucket",
			func(st *store) {
				if err := put(st, nodeID(4), 1).write(0, 0); err != nil {
					panic(err)
				}
			}, 100, sameBucket(posKey(id), posKey(nodeID(4)), offsetsKey())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newGatedDB()
			st := &store{db: db}
			if err := put(st, id, 100).write(0, 0); err != nil {
				t.Fatal(err)
			}
			r := st.readAhead(posKey(id))
			tc.between(st)
			before := db.gets.Load()
			got, err := st.use(r)
			if err != nil || got.Value(0) != tc.want {
				t.Errorf("use = %d, %v; want %d", got.Value(0), err, tc.want)
			}
			if reads := db.gets.Load() - before; reads != tc.wantReads {
				t.Errorf("use read the database %d times, want %d", reads, tc.wantReads)
			}
			db.open()
			st.writers.Wait()
		})
	}
}

// sameBucket is 1 (one more database read) when key shares its stamp bucket
// with one of the keys a write touched, else 0.
func sameBucket(key []byte, written ...[]byte) int64 {
	for _, w := range written {
		if stampBucket(key) == stampBucket(w) {
			return 1
		}
	}
	return 0
}

func TestQueuedWritesPastTheBoundAreWrittenByTheCaller(t *testing.T) {
	db := newGatedDB()
	st := &store{db: db}
	st.running = true // a writer that never comes back: only the bound writes
	b := st.newBatch()
	var one ExpiredValue
	one.Add(1, 0)
	for i := range params.MaxQueuedBalanceWrites + 1 {
		b.putPos(nodeID(i), one)
	}
	b.queue(0, 0)
	if n := len(st.queued); n != 0 {
		t.Fatalf("%d keys still queued after the bound was passed, want 0", n)
	}
	for _, i := range []int{0, params.MaxQueuedBalanceWrites} {
		if v, ok := storedValue(t, db, posKey(nodeID(i))); !ok || v.Value(0) != 1 {
			t.Fatalf("key %d not on disk after queue returned", i)
		}
	}
}

// BenchmarkOneClientWriteAfterAPersistencePass measures writing one client's
// balance after a persistence pass wrote 10,000 clients at once: the large
// batch must not make every later small write pay for it.
//
//	go test ./clientpool/ -run '^$' -bench OneClientWrite -benchtime 20000x
func BenchmarkOneClientWriteAfterAPersistencePass(b *testing.B) {
	st := &store{db: memorydb.New()}
	var v ExpiredValue
	v.Add(1e9, 0)
	big := st.newBatch()
	for i := range 10_000 {
		big.putPos(nodeID(i), v)
	}
	if err := big.write(0, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := st.newBatch()
		w.putPos(nodeID(i%10_000), v)
		if err := w.write(0, 0); err != nil {
			b.Fatal(err)
		}
	}
}

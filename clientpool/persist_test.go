package clientpool

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// recordingDB records every batch written to it: its keys, and whether it
// was written with WriteSync (its batches are SyncedBatches, so the pool
// writes top-ups that way).
type recordingDB struct {
	ethdb.KeyValueStore
	mu      sync.Mutex
	batches []recordedBatch
}

type recordedBatch struct {
	synced bool
	keys   []string
}

func (b recordedBatch) String() string {
	return fmt.Sprintf("{synced: %v, keys: %q}", b.synced, b.keys)
}

type recordingBatch struct {
	ethdb.Batch
	db   *recordingDB
	keys []string
}

func (d *recordingDB) NewBatch() ethdb.Batch {
	return &recordingBatch{Batch: d.KeyValueStore.NewBatch(), db: d}
}

func (b *recordingBatch) Put(k, v []byte) error {
	b.keys = append(b.keys, string(k))
	return b.Batch.Put(k, v)
}

func (b *recordingBatch) Delete(k []byte) error {
	b.keys = append(b.keys, string(k))
	return b.Batch.Delete(k)
}

func (b *recordingBatch) Write() error     { return b.write(false) }
func (b *recordingBatch) WriteSync() error { return b.write(true) }

func (b *recordingBatch) write(synced bool) error {
	b.db.mu.Lock()
	b.db.batches = append(b.db.batches, recordedBatch{synced: synced, keys: b.keys})
	b.db.mu.Unlock()
	return b.Batch.Write()
}

// since returns the batches written from index i on.
func (d *recordingDB) since(i int) []recordedBatch {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]recordedBatch(nil), d.batches[i:]...)
}

func storedValue(t *testing.T, db ethdb.KeyValueReader, key []byte) (ExpiredValue, bool) {
	t.Helper()
	enc, err := db.Get(key)
	if err != nil {
		return ExpiredValue{}, false
	}
	var v ExpiredValue
	if err := rlp.DecodeBytes(enc, &v); err != nil {
		t.Fatalf("stored value %x does not decode: %v", enc, err)
	}
	return v, true
}

// writtenNow writes the pool's queued balance writes to the database before
// it returns, so a test can read the database directly.
func writtenNow(pool *ClientPool) {
	if err := pool.st.flush(nil); err != nil {
		panic(err)
	}
}

func TestBalancesAreStoredWithTheExactKeyLayout(t *testing.T) {
	db := memorydb.New()
	pool := newTestPool(t, db, &mclock.Simulated{}, 1, 1)
	id := nodeID(7)
	pool.BalanceOperation(id, "10.1.2.3", func(op AtomicBalanceOperator) { op.SetBalance(5e9, 3e9) })

	wantPos := append(append([]byte{0, 1}, "pb:"...), id[:]...)
	if v, ok := storedValue(t, db, wantPos); !ok || v.Value(0) != 5e9 {
		t.Errorf("positive balance under %x: %v %v, want 5e9", wantPos, v, ok)
	}
	wantNeg := append([]byte{0, 1}, "nb:10.1.2.3"...)
	if v, ok := storedValue(t, db, wantNeg); !ok || v.Value(0) != 3e9 {
		t.Errorf("negative balance under %q: %v %v, want 3e9", wantNeg, v, ok)
	}
	if ok, _ := db.Has(append([]byte{0, 1}, "exp:"...)); !ok {
		t.Errorf("expiration offsets not stored under \"exp:\"")
	}
}

func TestEveryBalanceWriteCarriesTheExpirationOffsets(t *testing.T) {
	db := &recordingDB{KeyValueStore: memorydb.New()}
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 2, 2)
	pool.SetExpirationTCs(3600, 3600)
	peers := []*peer{newPeer(1, time.Hour), newPeer(2, time.Hour)}
	addBalance(pool, peers[0].node.ID(), 100e9)
	for _, p := range peers {
		pool.Register(p)
	}
	clock.Run(3 * time.Minute) // periodic persistence
	writtenNow(pool)
	clock.Run(time.Second)
	pool.Unregister(peers[1])
	writtenNow(pool)
	pool.Stop()

	var balanceBatches int
	for _, b := range db.since(0) {
		var balance, offsets bool
		for _, k := range b.keys {
			switch {
			case bytes.HasPrefix([]byte(k), posKeyPrefix()), bytes.HasPrefix([]byte(k), negKeyPrefix()):
				balance = true
			case k == string(offsetsKey()):
				offsets = true
			}
		}
		if balance {
			balanceBatches++
			if !offsets {
				t.Errorf("batch %v writes balances without the offsets", b)
			}
		}
	}
	if balanceBatches < 3 {
		t.Fatalf("only %d balance batches written, want top-up, periodic and unregister writes", balanceBatches)
	}
}

func TestActiveSpendingIsPersistedWithinAMinute(t *testing.T) {
	db := memorydb.New()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	p := newPeer(1, time.Hour)
	addBalance(pool, p.node.ID(), 1000e9)
	if v, _ := storedValue(t, db, posKey(p.node.ID())); v.Value(0) != 1000e9 {
		t.Fatalf("top-up not persisted before BalanceOperation returned: %d", v.Value(0))
	}
	pool.Register(p)
	clock.Run(61 * time.Second)
	writtenNow(pool)
	v, _ := storedValue(t, db, posKey(p.node.ID()))
	if got := v.Value(0); got > 940e9 || got < 938e9 {
		t.Fatalf("stored balance %d after 61 s active, want about 939e9-940e9", got)
	}
}

// TestAnEvictedClientsDebtIsPersistedWithinAMinute guards the periodic write
// of a client that stopped being active: persistAll visits the active clients
// and those deactivated since its last run, so the debt a free client ran up
// before its eviction is on disk within a minute, and a client that only
// waits is not written again.
func TestAnEvictedClientsDebtIsPersistedWithinAMinute(t *testing.T) {
	db := &recordingDB{KeyValueStore: memorydb.New()}
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	pool.SetConnectedBias(0)
	free, paid := newPeer(1, time.Hour), newPeer(2, time.Hour)
	pool.Register(free)
	clock.Run(10 * time.Second) // 10e9 tokens of debt at 1 token/ns
	addBalance(pool, paid.node.ID(), 1000e9)
	pool.Register(paid) // evicts the free client
	if free.capacity() != 0 || paid.capacity() != 1 {
		t.Fatalf("capacities free %d, paid %d: want the paid client to take the slot", free.capacity(), paid.capacity())
	}
	clock.Run(params.BalancePersistInterval)
	writtenNow(pool)
	v, ok := storedValue(t, db, negKey(free.freeID))
	if got := v.Value(pool.negExp.at(clock.Now())); !ok || got < 10e9 || got > 11e9 {
		t.Fatalf("stored debt of the evicted client %d (stored: %v), want about 10e9", got, ok)
	}

	mark := len(db.since(0))
	clock.Run(3 * params.BalancePersistInterval)
	writtenNow(pool)
	for _, b := range db.since(mark) {
		for _, k := range b.keys {
			if k == string(negKey(free.freeID)) {
				t.Fatalf("the waiting client's unchanged debt was written again: %v", b)
			}
		}
	}
}

func TestSmallBalancesAreDroppedAndLeaveTheTotal(t *testing.T) {
	db := memorydb.New()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	slow := PriceFactors{TimeFactor: 1e-6} // 1000 tokens per second
	pool.SetDefaultFactors(slow, slow)
	p := newPeer(1, time.Hour)
	addBalance(pool, p.node.ID(), 1.5e6)
	small := nodeID(9)
	addBalance(pool, small, 1000) // explicit writes store exact values, however small
	if v, ok := storedValue(t, db, posKey(small)); !ok || v.Value(0) != 1000 {
		t.Fatalf("explicit small balance not stored: %v", v)
	}
	if got := pool.TotalTokenAmount(); got != 1.5e6+1000 {
		t.Fatalf("total %d, want %d", got, uint64(1.5e6+1000))
	}
	pool.Register(p)
	clock.Run(10 * time.Minute) // spends 0.6e6, leaving 0.9e6 < threshold
	writtenNow(pool)
	if _, ok := storedValue(t, db, posKey(p.node.ID())); ok {
		t.Fatalf("balance spent below the drop threshold is still stored")
	}
	if got := pool.TotalTokenAmount(); got != 0.9e6+1000 {
		t.Fatalf("total %d while the client holds its balance, want %d", got, uint64(0.9e6+1000))
	}
	pool.Unregister(p)
	// Fix: the original kept counting dropped balances.
	if got := pool.TotalTokenAmount(); got != 1000 {
		t.Fatalf("total %d after the drop, want 1000", got)
	}
	if pos, _ := balanceOf(pool, p.node.ID(), p.freeID); pos != 0 {
		t.Fatalf("dropped balance reads %d", pos)
	}
}

func TestCorruptStoredValueReadsAsZero(t *testing.T) {
	db := memorydb.New()
	id := nodeID(4)
	db.Put(posKey(id), []byte{0xff, 0x00, 0x13})
	db.Put(negKey("10.9.9.9"), []byte{0xc5})
	db.Put(offsetsKey(), []byte{0x01})
	pool := newTestPool(t, db, &mclock.Simulated{}, 1, 1)
	if pos, neg := balanceOf(pool, id, "10.9.9.9"); pos != 0 || neg != 0 {
		t.Fatalf("corrupt balance read as (%d, %d), want zero", pos, neg)
	}
	p := newPeer(4, time.Hour)
	p.freeID = "10.9.9.9"
	if pool.Register(p) == nil || p.capacity() != 1 {
		t.Fatalf("client with corrupt stored balance not served")
	}
	if err := addBalance(pool, id, 5); err != nil {
		t.Fatal(err)
	}
	if pos, _ := balanceOf(pool, id, "10.9.9.9"); pos != 5 {
		t.Fatalf("balance after overwriting a corrupt value: %d", pos)
	}
}

func TestEmptyFreeIDHasNoStoredNegativeBalance(t *testing.T) {
	db := memorydb.New()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	p := newPeer(1, time.Hour)
	p.freeID = ""
	b := pool.Register(p)
	clock.Run(time.Minute)
	if _, neg := b.GetBalance(); neg != 0 {
		t.Fatalf("negative balance %d for the empty free ID", neg)
	}
	pool.Unregister(p)
	it := db.NewIterator(negKeyPrefix(), nil)
	defer it.Release()
	for it.Next() {
		t.Fatalf("negative balance stored under %q", it.Key())
	}
}

func TestTotalTokenAmountFollowsTopUpsAndSpending(t *testing.T) {
	db := memorydb.New()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	for i := 1; i <= 3; i++ {
		addBalance(pool, nodeID(i), int64(i)*10e9)
	}
	if got := pool.TotalTokenAmount(); got != 60e9 {
		t.Fatalf("total %d, want 60e9", got)
	}
	pool.Register(newPeer(1, time.Hour))
	clock.Run(5 * time.Second)
	if got := pool.TotalTokenAmount(); got != 55e9 {
		t.Fatalf("total %d after 5 s of spending, want 55e9", got)
	}
	pool.Stop()
	// a restarted pool reads the same total from the database
	pool2 := newTestPool(t, db, clock, 1, 1)
	if got := pool2.TotalTokenAmount(); got != 55e9 {
		t.Fatalf("total %d after restart, want 55e9", got)
	}
}

func TestGetPosBalanceIDs(t *testing.T) {
	pool := newTestPool(t, nil, &mclock.Simulated{}, 1, 1)
	for i := 1; i <= 5; i++ {
		addBalance(pool, nodeID(i), 1e9)
	}
	pool.BalanceOperation(nodeID(6), "10.0.0.6", func(op AtomicBalanceOperator) { op.SetBalance(0, 5e9) })
	ids := func(is ...int) []enode.ID {
		var r []enode.ID
		for _, i := range is {
			r = append(r, nodeID(i))
		}
		return r
	}
	tests := []struct {
		name        string
		start, stop enode.ID
		max         int
		want        []enode.ID
	}{
		// Fix: the original returned nothing for a zero stop.
		{"a zero stop means to the end", nodeID(2), enode.ID{}, 10, ids(2, 3, 4, 5)},
		{"stop is exclusive", nodeID(2), nodeID(4), 10, ids(2, 3)},
		{"maxCount limits the answer", enode.ID{}, enode.ID{}, 2, ids(1, 2)},
		{"clients without a positive balance are not listed", nodeID(6), enode.ID{}, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pool.GetPosBalanceIDs(tt.start, tt.stop, tt.max)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestExpirationContinuesAcrossRestart(t *testing.T) {
	db := memorydb.New()
	clock := &mclock.Simulated{}
	pool := NewClientPool(db, 1, 0, clock, nil)
	pool.SetExpirationTCs(10387, 10387) // a 2 h half-life
	pool.Start()
	id := nodeID(1)
	addBalance(pool, id, 16e9)
	clock.Run(2 * time.Hour)
	near := func(got, want uint64) bool { return got > want*999/1000 && got < want*1001/1000 }
	if pos, _ := balanceOf(pool, id, ""); !near(pos, 8e9) {
		t.Fatalf("after 2 h: %d, want 8e9", pos)
	}
	pool.Stop()
	clock.Run(5 * time.Hour) // downtime does not count

	pool = NewClientPool(db, 1, 0, clock, nil)
	pool.SetExpirationTCs(10387, 10387)
	pool.Start()
	defer pool.Stop()
	if pos, _ := balanceOf(pool, id, ""); !near(pos, 8e9) {
		t.Fatalf("after restart: %d, want 8e9", pos)
	}
	clock.Run(2 * time.Hour)
	if pos, _ := balanceOf(pool, id, ""); !near(pos, 4e9) {
		t.Fatalf("2 h after restart: %d, want 4e9", pos)
	}
}

func TestAFailedBalanceWriteIsReturnedAndChangesNothing(t *testing.T) {
	// A top-up is confirmed only once it is on disk (SPEC 2.5): a failed
	// database write is returned to the caller and changes no balance.
	tests := []struct {
		name      string
		connected bool
		op        func(pool *ClientPool, p *peer) error
	}{
		{"ClientPool.AddBalance of a client that is not connected", false, func(pool *ClientPool, p *peer) error {
			_, _, err := pool.AddBalance(p.node.ID(), "", 5e9)
			return err
		}},
		{"ClientPool.AddBalance of a connected client", true, func(pool *ClientPool, p *peer) error {
			_, _, err := pool.AddBalance(p.node.ID(), p.freeID, 5e9)
			return err
		}},
		{"the operator's AddBalance taking tokens away", true, func(pool *ClientPool, p *peer) (err error) {
			pool.BalanceOperation(p.node.ID(), p.freeID, func(op AtomicBalanceOperator) { _, _, err = op.AddBalance(-1e9) })
			return err
		}},
		{"the operator's SetBalance", true, func(pool *ClientPool, p *peer) (err error) {
			pool.BalanceOperation(p.node.ID(), p.freeID, func(op AtomicBalanceOperator) { err = op.SetBalance(7e9, 3e9) })
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newFailingDB()
			clock := &mclock.Simulated{}
			pool := NewClientPool(db, 1, 0, clock, nil)
			pool.SetLimits(10, 100)
			pool.Start()
			p := newPeer(1, time.Hour)
			if old, nw, err := pool.AddBalance(p.node.ID(), "", 2e9); err != nil || old != 0 || nw != 2e9 {
				t.Fatalf("setup: AddBalance = %d, %d, %v", old, nw, err)
			}
			if tt.connected {
				pool.Register(p)
				if got, err := pool.SetCapacity(p.node, 50, 0, true); err != nil || got != 50 {
					t.Fatalf("setup: SetCapacity = %d, %v", got, err)
				}
			}
			db.fail.Store(true)
			if err := tt.op(pool, p); !errors.Is(err, errDiskFull) {
				t.Fatalf("got error %v, want the write error", err)
			}
			if pos, neg := balanceOf(pool, p.node.ID(), p.freeID); pos != 2e9 || neg != 0 {
				t.Fatalf("balances (%d, %d) after a failed write, want (2e9, 0) unchanged", pos, neg)
			}
			if total := pool.TotalTokenAmount(); total != 2e9 {
				t.Fatalf("total token amount %d after a failed write, want 2e9", total)
			}
			if tt.connected && p.capacity() != 50 {
				t.Fatalf("capacity %d after a failed write, want 50 unchanged", p.capacity())
			}
			db.fail.Store(false)
			if old, nw, err := pool.AddBalance(p.node.ID(), p.freeID, 1e9); err != nil || old != 2e9 || nw != 3e9 {
				t.Fatalf("AddBalance after the disk recovered = %d, %d, %v; want 2e9, 3e9", old, nw, err)
			}
			pool.Stop()
			restarted := NewClientPool(db, 1, 0, clock, nil)
			defer restarted.Stop()
			if pos, _ := balanceOf(restarted, p.node.ID(), p.freeID); pos != 3e9 {
				t.Fatalf("stored balance %d after a restart, want 3e9", pos)
			}
		})
	}
}

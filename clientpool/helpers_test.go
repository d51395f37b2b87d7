package clientpool

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

// peer is the Peer of the internal tests: it records what the pool told it.
type peer struct {
	node      *enode.Node
	freeID    string
	allowance time.Duration

	mu           sync.Mutex
	cap          uint64
	updates      []uint64
	requested    []bool
	disconnected int
	onDisconnect func(*peer)
	onUpdate     func(*peer, uint64)
	log          *callLog
}

// callLog records callbacks of many peers in order.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

func (l *callLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func nodeID(i int) enode.ID {
	var id enode.ID
	binary.BigEndian.PutUint64(id[24:], uint64(i)+1)
	return id
}

func newPeer(i int, allowance time.Duration) *peer {
	id := nodeID(i)
	return &peer{node: enode.SignNull(new(enr.Record), id), freeID: id.String(), allowance: allowance}
}

func (p *peer) Node() *enode.Node                { return p.node }
func (p *peer) FreeClientID() string             { return p.freeID }
func (p *peer) InactiveAllowance() time.Duration { return p.allowance }
func (p *peer) UpdateCapacity(c uint64, requested bool) {
	p.mu.Lock()
	p.cap = c
	p.updates = append(p.updates, c)
	p.requested = append(p.requested, requested)
	cb, l := p.onUpdate, p.log
	p.mu.Unlock()
	if l != nil {
		l.add("update " + p.node.ID().TerminalString())
	}
	if cb != nil {
		cb(p, c)
	}
}
func (p *peer) Disconnect() {
	p.mu.Lock()
	p.disconnected++
	cb, l := p.onDisconnect, p.log
	p.mu.Unlock()
	if l != nil {
		l.add("disconnect " + p.node.ID().TerminalString())
	}
	if cb != nil {
		cb(p)
	}
}
func (p *peer) capacity() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cap
}
func (p *peer) wasDisconnected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.disconnected > 0
}

// testFactors are the scenario factors of issue 2: 1 token per ns, nothing per
// capacity, 1 per request cost unit.
var testFactors = PriceFactors{TimeFactor: 1, CapacityFactor: 0, RequestFactor: 1}

// newTestPool returns a started pool with minCap 1, bias 3 min, the scenario
// factors for both balances and the given limits.
func newTestPool(t testing.TB, db ethdb.KeyValueStore, clock *mclock.Simulated, maxCount, maxCap uint64) *ClientPool {
	if db == nil {
		db = memorydb.New()
	}
	pool := NewClientPool(db, 1, 3*time.Minute, clock, nil)
	pool.SetDefaultFactors(testFactors, testFactors)
	pool.SetLimits(maxCount, maxCap)
	pool.Start()
	t.Cleanup(pool.Stop)
	return pool
}

// addBalance adds amount to id's positive balance.
func addBalance(pool *ClientPool, id enode.ID, amount int64) (err error) {
	pool.BalanceOperation(id, "", func(op AtomicBalanceOperator) {
		_, _, err = op.AddBalance(amount)
	})
	return err
}

// balanceOf reads id's balances through BalanceOperation.
func balanceOf(pool *ClientPool, id enode.ID, freeID string) (pos, neg uint64) {
	pool.BalanceOperation(id, freeID, func(op AtomicBalanceOperator) {
		pos, neg = op.GetBalance()
	})
	return pos, neg
}

// checkInvariants checks the SPEC 3.2 invariants visible from outside.
func checkInvariants(t *testing.T, pool *ClientPool, peers []*peer) {
	t.Helper()
	count, capacity := pool.Active()
	maxCount, maxCap := pool.Limits()
	if count > maxCount || capacity > maxCap {
		t.Fatalf("active (%d, %d) over limits (%d, %d)", count, capacity, maxCount, maxCap)
	}
	var sum, n uint64
	for _, p := range peers {
		if c := p.capacity(); c > 0 {
			sum += c
			n++
		}
	}
	if sum != capacity || n != count {
		t.Fatalf("reported capacities sum to (%d, %d), pool says (%d, %d)", n, sum, count, capacity)
	}
}

func newTestDB() ethdb.KeyValueStore { return memorydb.New() }

// errDiskFull is the write error of failingDB.
var errDiskFull = errors.New("disk full")

// failingDB is a memorydb whose batch writes fail while fail is set: the seam
// where a real disk reports a failed write.
type failingDB struct {
	*memorydb.Database
	fail atomic.Bool
}

func newFailingDB() *failingDB { return &failingDB{Database: memorydb.New()} }

func (d *failingDB) NewBatch() ethdb.Batch { return &failingBatch{Batch: d.Database.NewBatch(), db: d} }
func (d *failingDB) NewBatchWithSize(n int) ethdb.Batch {
	return &failingBatch{Batch: d.Database.NewBatchWithSize(n), db: d}
}

type failingBatch struct {
	ethdb.Batch
	db *failingDB
}

func (b *failingBatch) Write() error {
	if b.db.fail.Load() {
		return errDiskFull
	}
	return b.Batch.Write()
}

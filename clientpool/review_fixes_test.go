package clientpool

import (
	"errors"
	"fmt"
	"math/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

func TestCapacityQueryOfAConnectedAskerInAPoolFullByCountAgreesWithSetCapacity(t *testing.T) {
	// Fix: the curve counted a connected asker's slot twice, so while the pool
	// was full by count it evicted the lowest client where SetCapacity only
	// cuts it by a quarter. B holds 8 at 1e6 per unit, A holds 1: the curve
	// said 10, SetCapacity(10) grants 9 (B cut to 1 out-ranks A at 10).
	clock := &mclock.Simulated{}
	pool := NewClientPool(memorydb.New(), 1, 0, clock, nil)
	pool.Start()
	t.Cleanup(pool.Stop)
	pool.SetLimits(2, 10)
	a, b := newPeer(1, time.Minute), newPeer(2, time.Minute)
	addBalance(pool, b.node.ID(), 8e6)
	addBalance(pool, a.node.ID(), 5e7)
	pool.Register(b)
	if got, err := pool.SetCapacity(b.node, 8, 0, true); err != nil || got != 8 {
		t.Fatalf("setup: b got %d, %v", got, err)
	}
	pool.Register(a)
	if a.capacity() != 1 || b.capacity() != 8 {
		t.Fatalf("setup: a %d, b %d", a.capacity(), b.capacity())
	}
	answer := capQuery(t, pool, a.node.ID(), a.freeID, 0, 0)
	if len(answer) != 1 || answer[0] != 9 {
		t.Fatalf("cq answered %v to the connected asker, want [9]", answer)
	}
	if got, err := pool.SetCapacity(a.node, 10, 0, true); err != nil || got != 9 {
		t.Fatalf("SetCapacity(10) = %d, %v; want the partial grant 9", got, err)
	}
}

// agreementPool builds a random pool state from seed: every registered client
// active (a client left waiting is unregistered, so no waiting client competes
// with the asker), holding a random capacity, no time passing.
type agreementPool struct {
	pool  *ClientPool
	peers []*peer
	fresh *peer // a client that is not connected
}

func newAgreementPool(t *testing.T, seed int64) agreementPool {
	rng := rand.New(rand.NewSource(seed))
	clock := &mclock.Simulated{}
	minCap := uint64(1 + rng.Intn(3))
	bias := time.Duration(0)
	if rng.Intn(2) == 0 {
		bias = time.Minute
	}
	pool := NewClientPool(memorydb.New(), minCap, bias, clock, nil)
	if rng.Intn(2) == 0 {
		pool.SetDefaultFactors(perCapacity, PriceFactors{})
	}
	maxCount := uint64(2 + rng.Intn(6))
	maxCap := maxCount*minCap + uint64(rng.Intn(100))
	pool.SetLimits(maxCount, maxCap)
	pool.Start()
	t.Cleanup(pool.Stop)
	balance := func() int64 {
		if rng.Intn(4) == 0 {
			return 0 // a free client
		}
		return int64(1e6 + rng.Intn(1e9))
	}
	ap := agreementPool{pool: pool}
	n := 1 + rng.Intn(int(maxCount)+2)
	for i := 0; i < n; i++ {
		p := newPeer(i, time.Hour)
		if amount := balance(); amount > 0 {
			addBalance(pool, p.node.ID(), amount)
		}
		pool.Register(p)
		if p.capacity() == 0 {
			pool.Unregister(p)
			continue
		}
		pool.SetCapacity(p.node, minCap+uint64(rng.Intn(int(maxCap/2)+1)), 0, false)
		ap.peers = append(ap.peers, p)
	}
	var active []*peer
	for _, p := range ap.peers {
		if p.capacity() > 0 {
			active = append(active, p)
		} else {
			pool.Unregister(p) // cut out by a later raise
		}
	}
	ap.peers = active
	ap.fresh = newPeer(1000, time.Hour)
	if amount := balance(); amount > 0 {
		addBalance(pool, ap.fresh.node.ID(), amount)
	}
	if pool.Inactive() != 0 {
		t.Fatalf("setup: %d waiting clients", pool.Inactive())
	}
	return ap
}

func TestCapacityQueryAgreesWithSetCapacityInRandomPools(t *testing.T) {
	// For connected and not connected askers in random pool states: asking for
	// the answered capacity is granted in full; asking 10% more is granted
	// exactly the answer (it is the most the asker can hold). A newcomer
	// registers first, also in a pool full by count (Fix: the answer made the
	// raise beat the clients Register evicted for the newcomer's slot again,
	// which it need not, and ignored that they wait and come back unless the
	// newcomer out-ranks them at minCap, answered 0, or at the capacity).
	//
	// Not checked: a Register whose admission sets off a chain, an evicted
	// client coming back at minCap and evicting another (who may come back in
	// turn). The curve is one eviction order for every asker and does not
	// model that; the check counts how often it is skipped.
	checked, fullChecked, chains := 0, 0, 0
	for seed := int64(1); seed <= 120; seed++ {
		base := newAgreementPool(t, seed)
		askers := len(base.peers) + 1
		for i := 0; i < askers; i++ {
			for _, more := range []bool{false, true} {
				name := fmt.Sprintf("seed %d asker %d more %v", seed, i, more)
				ap := newAgreementPool(t, seed)
				pool := ap.pool
				minCap := pool.MinCap()
				var x *peer
				if i < len(ap.peers) {
					x = ap.peers[i]
				} else {
					x = ap.fresh
				}
				answer := capQuery(t, pool, x.node.ID(), x.freeID, 0, 0)
				if len(answer) != 1 {
					t.Fatalf("%s: cq answered %v", name, answer)
				}
				want := answer[0]
				count, _ := pool.Active()
				maxCount, _ := pool.Limits()
				full := x == ap.fresh && count >= maxCount
				if x == ap.fresh {
					evicts := admissionEvicts(pool)
					pool.Register(x)
					if !evictedJust(pool, ap.peers, evicts) {
						chains++
						continue
					}
					if want == 0 {
						continue // not admitted: nothing to agree on
					}
					if x.capacity() != minCap {
						t.Fatalf("%s: cq answered %d, yet Register left the client at %d", name, want, x.capacity())
					}
				} else if want == 0 {
					t.Fatalf("%s: cq answered 0 to an active client holding %d", name, x.capacity())
				}
				req := want
				if more {
					req = want + (want+9)/10
				}
				got, err := pool.SetCapacity(x.node, req, 0, true)
				if err == ErrNoPriority && want == minCap && req > minCap {
					continue // a free client: answered minCap, cannot raise
				}
				if err != nil || got != want {
					t.Fatalf("%s: cq answered %d, SetCapacity(%d) = %d, %v", name, want, req, got, err)
				}
				checked++
				if full {
					fullChecked++
				}
			}
		}
	}
	t.Logf("%d agreement checks, %d of a newcomer in a pool full by count; %d chains skipped", checked, fullChecked, chains)
	if checked < 100 || fullChecked < 20 {
		t.Fatalf("only %d agreement checks, %d in a pool full by count: the random pools no longer exercise the query", checked, fullChecked)
	}
}

// admissionEvicts returns the clients the capacity curve says a newcomer's
// admission deactivates (its steps up to kmin).
func admissionEvicts(pool *ClientPool) map[*client]bool {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	snap := pool.snapshotCurve(pool.clock.Now())
	items := append([]*client(nil), pool.active.items...)
	sim := snap.build().newcomer
	out := make(map[*client]bool)
	for k := 1; k <= sim.kmin && k < len(sim.steps); k++ {
		if st := sim.steps[k]; st.capAfter == 0 {
			out[items[st.client]] = true
		}
	}
	return out
}

// evictedJust reports whether the peers inactive now are exactly evicts: no
// evicted client came back and evicted another.
func evictedJust(pool *ClientPool, peers []*peer, evicts map[*client]bool) bool {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	for _, p := range peers {
		c := pool.clients[p.node.ID()]
		if c != nil && c.active == evicts[c] {
			return false
		}
	}
	return true
}

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

func TestAFailedBalanceWriteIsReturnedAndChangesNothing(t *testing.T) {
	// Fix: a top-up whose database write failed was only logged, and the RPC
	// reported it as done; a crash then lost a paid top-up (SPEC 2.5).
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

func TestClientPoolAddBalanceAfterStopReturnsErrStopped(t *testing.T) {
	pool := NewClientPool(nil, 1, 0, &mclock.Simulated{}, nil)
	pool.Stop()
	if _, _, err := pool.AddBalance(nodeID(1), "", 1); !errors.Is(err, ErrStopped) {
		t.Fatalf("AddBalance after Stop returned %v, want ErrStopped", err)
	}
}

func TestACapacityUpdateReachesThePeerBeforeTheCallThatCausedItReturns(t *testing.T) {
	// Fix: a caller that found another goroutine delivering to the same client
	// left a note and returned; its requested update reached the peer later,
	// so the protocol sent the CapacityReply before the CapacityUpdate (SPEC
	// 3.2: callbacks run before the call returns; SPEC 5). Goroutine 1 is held
	// inside the peer's UpdateCapacity while goroutine 2 raises the capacity.
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 100)
	a := newPeer(1, time.Hour)
	addBalance(pool, a.node.ID(), 1e15)
	pool.Register(a)
	if a.capacity() != 1 {
		t.Fatalf("setup: capacity %d", a.capacity())
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	a.onUpdate = func(_ *peer, c uint64) {
		if c == 10 && held.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	}
	waiting := make(chan struct{}, 1)
	testHookDeliveryWait = func(p *ClientPool) {
		if p == pool {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
	}
	defer func() { testHookDeliveryWait = nil }()

	g1 := make(chan struct{})
	go func() {
		defer close(g1)
		pool.SetCapacity(a.node, 10, 0, false)
	}()
	deadline := time.After(10 * time.Second)
	select {
	case <-entered:
	case <-deadline:
		t.Fatal("goroutine 1 never delivered capacity 10")
	}
	type result struct {
		got     uint64
		err     error
		updates []uint64
		req     []bool
	}
	g2 := make(chan result, 1)
	go func() {
		got, err := pool.SetCapacity(a.node, 20, 0, true)
		a.mu.Lock()
		r := result{got, err, append([]uint64(nil), a.updates...), append([]bool(nil), a.requested...)}
		a.mu.Unlock()
		g2 <- r
	}()
	select {
	case <-waiting: // goroutine 2 waits for goroutine 1's delivery
	case r := <-g2:
		close(release)
		t.Fatalf("SetCapacity(20) = %d, %v returned while another goroutine was delivering; the peer had been told %v", r.got, r.err, r.updates)
	case <-deadline:
		t.Fatal("goroutine 2 neither waited nor returned")
	}
	close(release)
	var r result
	select {
	case r = <-g2:
	case <-deadline:
		t.Fatal("SetCapacity(20) did not return after the other delivery ended")
	}
	<-g1
	if r.err != nil || r.got != 20 {
		t.Fatalf("SetCapacity(20) = %d, %v", r.got, r.err)
	}
	if n := len(r.updates); n == 0 || r.updates[n-1] != 20 || !r.req[n-1] {
		t.Fatalf("when SetCapacity(20) returned the peer had been told %v (requested %v); want 20, requested, last", r.updates, r.req)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if want := []uint64{1, 10, 20}; fmt.Sprint(a.updates) != fmt.Sprint(want) {
		t.Fatalf("peer told %v in the end, want %v", a.updates, want)
	}
}

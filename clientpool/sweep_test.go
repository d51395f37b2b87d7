package clientpool

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// The hourly sweep (SPEC 2.5): it deletes stored values that decayed to or
// below params.BalanceDropThreshold, and never a value an explicit top-up or
// SetBalance stored small that has not decayed since.

// newSweepPool starts a pool with one slot on an in-memory database and a
// simulated clock, its positive and negative balances expiring with time
// constants posTC and negTC (seconds; 0 = never).
func newSweepPool(t *testing.T, posTC, negTC uint64) (*memorydb.Database, *mclock.Simulated, *ClientPool) {
	t.Helper()
	db := memorydb.New()
	clock := &mclock.Simulated{}
	pool := newTestPool(t, db, clock, 1, 1)
	pool.SetExpirationTCs(posTC, negTC)
	return db, clock, pool
}

// setBalance sets id's positive and freeID's negative balance, as the
// operator's SetBalance does.
func setBalance(t *testing.T, pool *ClientPool, id enode.ID, freeID string, pos, neg uint64) {
	t.Helper()
	var err error
	pool.BalanceOperation(id, freeID, func(op AtomicBalanceOperator) { err = op.SetBalance(pos, neg) })
	if err != nil {
		t.Fatalf("SetBalance(%d, %d): %v", pos, neg, err)
	}
}

func TestHourlySweepDeletesDecayedBalances(t *testing.T) {
	db, clock, pool := newSweepPool(t, 600, 600)
	decaying, staying := nodeID(1), nodeID(2)
	setBalance(t, pool, decaying, "10.0.0.1", 2e6, 2e6)
	setBalance(t, pool, staying, "10.0.0.2", 1e12, 1e12)
	clock.Run(61 * time.Minute)
	writtenNow(pool)
	for _, k := range [][]byte{posKey(decaying), negKey("10.0.0.1")} {
		if _, ok := storedValue(t, db, k); ok {
			t.Errorf("decayed balance %q survived the sweep", k)
		}
	}
	for _, k := range [][]byte{posKey(staying), negKey("10.0.0.2")} {
		if _, ok := storedValue(t, db, k); !ok {
			t.Errorf("large balance %q was swept", k)
		}
	}
	want := uint64(2242867719) // 1e12 * e^-6.1 (61 minutes)
	if got := pool.TotalTokenAmount(); got < want*999/1000 || got > want*1001/1000 {
		t.Errorf("total %d after the sweep, want about %d", got, want)
	}
}

func TestTheSweepKeepsASmallTopUpThatNeverExpires(t *testing.T) {
	// The node's defaults: positive balances never expire, negative ones in 1 h.
	db, clock, pool := newSweepPool(t, 0, 3600)
	id := nodeID(1)
	if _, got, err := pool.AddBalance(id, "", 500000); err != nil || got != 500000 {
		t.Fatalf("AddBalance(500000) = %d, %v", got, err)
	}
	clock.Run(62 * time.Minute) // one hourly sweep
	writtenNow(pool)
	if pos, _ := balanceOf(pool, id, ""); pos != 500000 {
		t.Errorf("balance %d after the sweep, want the top-up's 500000", pos)
	}
	if total := pool.TotalTokenAmount(); total != 500000 {
		t.Errorf("total %d after the sweep, want 500000", total)
	}
	if v, ok := storedValue(t, db, posKey(id)); !ok || v.Value(0) != 500000 {
		t.Errorf("stored balance %d (present: %v) after the sweep, want 500000", v.Value(0), ok)
	}
}

func TestTheSweepKeepsASmallExpiringTopUpUntilItHasDecayed(t *testing.T) {
	// Both kinds expire (tc 1 h: the offset grows by one every ln2 h, 41.6
	// min). Written at 59 min (offset 1.42), a small top-up has not lost value
	// by the sweep at 60 min (offset 1.44, same whole unit): it stays exactly
	// as stored. By the sweep at 120 min (offset 2.89) it has decayed to about
	// 181,000 and goes.
	db, clock, pool := newSweepPool(t, 3600, 3600)
	id, freeID := nodeID(1), "10.0.0.1"
	clock.Run(59 * time.Minute)
	setBalance(t, pool, id, freeID, 500000, 400000)
	clock.Run(time.Minute) // the sweep at 60 min
	writtenNow(pool)
	if _, ok := storedValue(t, db, posKey(id)); !ok {
		t.Fatal("a small positive balance set a minute ago was swept before it decayed")
	}
	if _, ok := storedValue(t, db, negKey(freeID)); !ok {
		t.Fatal("a small negative balance set a minute ago was swept before it decayed")
	}
	if total := pool.TotalTokenAmount(); total < 490000 {
		t.Fatalf("total %d after the first sweep, want the top-up (about 492,000 after a minute's decay)", total)
	}

	clock.Run(time.Hour) // the sweep at 120 min
	writtenNow(pool)
	for _, k := range [][]byte{posKey(id), negKey(freeID)} {
		if v, ok := storedValue(t, db, k); ok {
			t.Errorf("balance %q survived the sweep after decaying to %d", k, v.Value(pool.posExp.at(clock.Now())))
		}
	}
	if total := pool.TotalTokenAmount(); total != 0 {
		t.Errorf("total %d after the decayed top-up was swept, want 0", total)
	}
}

func TestTheSweepScansOnlyBalanceKindsThatExpire(t *testing.T) {
	// A value stored before expiration was turned off decayed then; with its
	// kind no longer expiring, nothing of that kind is swept (nothing can decay
	// now), while the kind that still expires is.
	db, clock, pool := newSweepPool(t, 600, 600)
	id, freeID := nodeID(1), "10.0.0.1"
	setBalance(t, pool, id, freeID, 2e6, 2e6)
	clock.Run(30 * time.Minute) // both decay to about 100,000; no sweep yet
	pool.SetExpirationTCs(0, 600)
	clock.Run(31 * time.Minute) // the sweep at 60 min
	writtenNow(pool)
	if _, ok := storedValue(t, db, posKey(id)); !ok {
		t.Error("a positive balance was swept while positive balances do not expire")
	}
	if _, ok := storedValue(t, db, negKey(freeID)); ok {
		t.Error("a decayed negative balance survived the sweep")
	}
}

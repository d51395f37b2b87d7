package clientpool_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/leveldb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
)

// Balances and expiration survive Stop and a new pool on the same database
// (SPEC 2.1, 2.5), on a real LevelDB directory and on memorydb.

// testStore is a balance database that can be "restarted": LevelDB is closed and
// opened again from its directory, memorydb keeps its contents.
type testStore interface {
	db() ethdb.KeyValueStore
	restart(t *testing.T)
}

type memStore struct{ mem *memorydb.Database }

func (s *memStore) db() ethdb.KeyValueStore { return s.mem }
func (s *memStore) restart(*testing.T)      {}

type levelStore struct {
	dir string
	ldb *leveldb.Database
}

func (s *levelStore) db() ethdb.KeyValueStore { return s.ldb }

func (s *levelStore) open(t *testing.T) {
	ldb, err := leveldb.New(s.dir, 16, 16, "", false)
	if err != nil {
		t.Fatalf("open LevelDB %s: %v", s.dir, err)
	}
	s.ldb = ldb
}

func (s *levelStore) restart(t *testing.T) {
	if err := s.ldb.Close(); err != nil {
		t.Fatalf("close LevelDB: %v", err)
	}
	s.open(t)
}

var testStores = []struct {
	name string
	open func(t *testing.T) testStore
}{
	{"on LevelDB", func(t *testing.T) testStore {
		s := &levelStore{dir: t.TempDir()}
		s.open(t)
		t.Cleanup(func() { s.ldb.Close() })
		return s
	}},
	{"on memorydb", func(*testing.T) testStore { return &memStore{memorydb.New()} }},
}

// startPool starts a pool with minCap 1 on a fresh simulated clock, as a new
// process would, on the given database.
func startPool(db ethdb.KeyValueStore) (*clientpool.ClientPool, *mclock.Simulated) {
	clock := new(mclock.Simulated)
	pool := clientpool.NewClientPool(db, 1, 0, clock, alwaysSynced)
	pool.Start()
	pool.SetLimits(10, 10)
	return pool, clock
}

// twoHourHalfLife is the e-folding time (seconds) of a two-hour half-life:
// 7200 s / ln 2.
const twoHourHalfLife = 10387

func TestExpirationIsContinuousAcrossRestarts(t *testing.T) {
	sides := []struct {
		name   string
		freeID string
		tcs    func(pool *clientpool.ClientPool)
		set    func(t *testing.T, pool *clientpool.ClientPool)
		read   func(pool *clientpool.ClientPool) uint64
	}{
		{"a positive balance", "",
			func(pool *clientpool.ClientPool) { pool.SetExpirationTCs(twoHourHalfLife, 0) },
			func(t *testing.T, pool *clientpool.ClientPool) { addBalance(t, pool, testID(1), 16e9) },
			func(pool *clientpool.ClientPool) uint64 { pos, _ := getBalance(pool, testID(1), ""); return pos }},
		{"a negative balance", "10.0.0.1",
			func(pool *clientpool.ClientPool) { pool.SetExpirationTCs(0, twoHourHalfLife) },
			func(t *testing.T, pool *clientpool.ClientPool) { setBalance(t, pool, testID(1), "10.0.0.1", 0, 16e9) },
			func(pool *clientpool.ClientPool) uint64 {
				_, neg := getBalance(pool, testID(1), "10.0.0.1")
				return neg
			}},
	}
	for _, store := range testStores {
		for _, side := range sides {
			t.Run(side.name+" of 16e9 with a 2 h half-life halves every 2 h across a restart "+store.name, func(t *testing.T) {
				s := store.open(t)
				pool, clock := startPool(s.db())
				side.tcs(pool)
				side.set(t, pool)
				clock.Run(2 * time.Hour)
				if got := side.read(pool); !within(float64(got), 8e9, 0.001) {
					t.Errorf("after 2 h: %d, want 8e9 (±0.1%%)", got)
				}
				pool.Stop()
				s.restart(t)

				pool, clock = startPool(s.db())
				defer pool.Stop()
				side.tcs(pool)
				if got := side.read(pool); !within(float64(got), 8e9, 0.001) {
					t.Errorf("after the restart: %d, want 8e9 (±0.1%%)", got)
				}
				clock.Run(2 * time.Hour)
				if got := side.read(pool); !within(float64(got), 4e9, 0.001) {
					t.Errorf("after 2 more hours: %d, want 4e9 (±0.1%%)", got)
				}
			})
		}
	}
}

func TestTopUpsSurviveRestartsExactly(t *testing.T) {
	for _, store := range testStores {
		t.Run("a top-up of a disconnected and of a connected client survives Stop and a new pool "+store.name, func(t *testing.T) {
			s := store.open(t)
			pool, _ := startPool(s.db())
			addBalance(t, pool, testID(1), 123456789)
			p := newTestPeer(testID(2), "10.0.0.2", time.Hour, nil)
			if !register(pool, p) {
				t.Fatal("Register returned nil")
			}
			addBalance(t, pool, testID(2), 987654321)
			addBalance(t, pool, testID(2), 1) // a second top-up adds up exactly
			pool.Stop()                       // without Unregister: Stop persists
			s.restart(t)

			pool, _ = startPool(s.db())
			defer pool.Stop()
			if pos, _ := getBalance(pool, testID(1), ""); pos != 123456789 {
				t.Errorf("disconnected client's balance after restart: %d, want 123456789", pos)
			}
			if pos, _ := getBalance(pool, testID(2), "10.0.0.2"); pos != 987654322 {
				t.Errorf("connected client's balance after restart: %d, want 987654322", pos)
			}
		})
		t.Run("a top-up is on disk when BalanceOperation returns, before any Stop "+store.name, func(t *testing.T) {
			s := store.open(t)
			crashed, _ := startPool(s.db())
			defer crashed.Stop() // only after the new pool has read the store
			addBalance(t, crashed, testID(3), 5e9)
			setBalance(t, crashed, testID(4), "10.0.0.4", 7, 3e9) // small values are stored exactly too

			// A second pool on the same database sees only what was written.
			pool, _ := startPool(s.db())
			defer pool.Stop()
			if pos, _ := getBalance(pool, testID(3), ""); pos != 5e9 {
				t.Errorf("top-up seen by a new pool: %d, want 5e9", pos)
			}
			if pos, neg := getBalance(pool, testID(4), "10.0.0.4"); pos != 7 || neg != 3e9 {
				t.Errorf("SetBalance seen by a new pool: (%d, %d), want (7, 3e9)", pos, neg)
			}
		})
	}
}

func TestNegativeBalancesPersist(t *testing.T) {
	for _, store := range testStores {
		t.Run("a free client's cost of service is stored at Unregister and at Stop "+store.name, func(t *testing.T) {
			s := store.open(t)
			pool, clock := startPool(s.db())
			pool.SetDefaultFactors(timeFactors, timeFactors)
			gone := newTestPeer(testID(1), "10.0.0.1", time.Hour, nil)
			stays := newTestPeer(testID(2), "10.0.0.2", time.Hour, nil)
			for _, p := range []*testPeer{gone, stays} {
				if !register(pool, p) || p.Capacity() == 0 {
					t.Fatalf("client %v not activated", p.node.ID())
				}
			}
			clock.Run(10 * time.Second)
			unregister(pool, gone)
			clock.Run(10 * time.Second)
			setBalance(t, pool, testID(3), "10.0.0.3", 0, 5e9)
			pool.Stop() // stays is still registered
			s.restart(t)

			pool, _ = startPool(s.db())
			defer pool.Stop()
			for _, c := range []struct {
				i      int
				freeID string
				want   float64
			}{{1, "10.0.0.1", 10e9}, {2, "10.0.0.2", 20e9}, {3, "10.0.0.3", 5e9}} {
				if _, neg := getBalance(pool, testID(c.i), c.freeID); !within(float64(neg), c.want, 0.001) {
					t.Errorf("negative balance of %s after restart: %d, want %g", c.freeID, neg, c.want)
				}
			}
		})
	}
}

func TestTotalTokenAmountSurvivesRestart(t *testing.T) {
	for _, store := range testStores {
		t.Run("the total of positive balances is the same after a restart "+store.name, func(t *testing.T) {
			s := store.open(t)
			pool, _ := startPool(s.db())
			for i, amount := range []int64{1e9, 2e9, 3e9} {
				addBalance(t, pool, testID(10+i), amount)
			}
			if got := pool.TotalTokenAmount(); got != 6e9 {
				t.Errorf("TotalTokenAmount() = %d, want 6e9", got)
			}
			pool.Stop()
			s.restart(t)

			pool, _ = startPool(s.db())
			defer pool.Stop()
			if got := pool.TotalTokenAmount(); got != 6e9 {
				t.Errorf("TotalTokenAmount() after restart = %d, want 6e9", got)
			}
			ids := pool.GetPosBalanceIDs(enode.ID{}, enode.ID{}, 10)
			if want := []enode.ID{testID(10), testID(11), testID(12)}; !reflect.DeepEqual(ids, want) {
				t.Errorf("GetPosBalanceIDs after restart = %v, want %v", ids, want)
			}
		})
	}
}

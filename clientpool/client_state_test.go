package clientpool_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/vflux"
)

// The tests of this file guard the pool's read and write API by node ID
// (ClientInfo, ConnectedClients, Connected, SetClientFactors) and its
// capacity query counters: what a transport and an RPC API report from
// instead of keeping copies of the pool's state.

func TestClientInfoReportsARegisteredClientAndNoOther(t *testing.T) {
	pool, clock := newSimPool(t, nil, 1, 0)
	pool.SetLimits(10, 100)
	pool.SetDefaultFactors(timeFactors, clientpool.PriceFactors{TimeFactor: 0.5})
	a := newTestPeer(testID(1), "10.0.0.1", time.Hour, clock)
	addBalance(t, pool, a.node.ID(), 1e12)
	clock.Run(2 * time.Second) // not connected yet: does not count as connected time
	if _, ok := pool.ClientInfo(a.node.ID()); ok {
		t.Fatal("ClientInfo reports a client that never registered")
	}
	if !register(pool, a) {
		t.Fatal("registration refused")
	}
	clock.Run(5 * time.Second)

	st, ok := pool.ClientInfo(a.node.ID())
	if !ok {
		t.Fatal("ClientInfo does not report a registered client")
	}
	if st.ID() != a.node.ID() || st.FreeID != "10.0.0.1" {
		t.Errorf("state is of %v / %q, want %v / 10.0.0.1", st.ID(), st.FreeID, a.node.ID())
	}
	if st.Capacity == 0 || st.Capacity != a.Capacity() {
		t.Errorf("capacity %d, the peer was told %d", st.Capacity, a.Capacity())
	}
	if st.Connected != 5*time.Second {
		t.Errorf("connected for %v, want 5s", st.Connected)
	}
	// One token per ns of active time: 5 s spent 5e9 of the 1e12.
	if st.PosBalance != 1e12-5e9 {
		t.Errorf("positive balance %d, want %d", st.PosBalance, uint64(1e12-5e9))
	}
	if pos, neg := a.Balance().GetBalance(); st.PosBalance != pos || st.NegBalance != neg {
		t.Errorf("balances %d/%d, the ConnectedBalance reads %d/%d", st.PosBalance, st.NegBalance, pos, neg)
	}
	if st.PosFactors != timeFactors || st.NegFactors != (clientpool.PriceFactors{TimeFactor: 0.5}) {
		t.Errorf("factors %+v / %+v, want the defaults", st.PosFactors, st.NegFactors)
	}

	unregister(pool, a)
	if _, ok := pool.ClientInfo(a.node.ID()); ok {
		t.Fatal("ClientInfo reports a client after its Unregister")
	}
	if n := pool.Connected(); n != 0 {
		t.Fatalf("Connected() = %d after the only client left", n)
	}
}

func TestClientInfoReportsAWaitingClientWithCapacityZero(t *testing.T) {
	pool, clock := newSimPool(t, nil, 1, time.Hour)
	pool.SetLimits(1, 1)
	a := newTestPeer(testID(1), "10.0.0.1", time.Hour, clock)
	b := newTestPeer(testID(2), "10.0.0.2", time.Hour, clock)
	register(pool, a)
	register(pool, b) // the bias keeps a: b waits
	st, ok := pool.ClientInfo(b.node.ID())
	if !ok || st.Capacity != 0 {
		t.Fatalf("waiting client: ClientInfo = %+v, %v; want connected with capacity 0", st, ok)
	}
	if st, _ := pool.ClientInfo(a.node.ID()); st.Capacity != 1 {
		t.Fatalf("active client: capacity %d, want 1", st.Capacity)
	}
	if n := pool.Connected(); n != 2 {
		t.Fatalf("Connected() = %d, want 2 (one active, one waiting)", n)
	}
}

func TestConnectedClientsAreSortedByIDAndBounded(t *testing.T) {
	pool, clock := newSimPool(t, nil, 1, 0)
	pool.SetLimits(10, 100)
	peers := make([]*testPeer, 5)
	for _, i := range []int{4, 1, 3, 0, 2} { // registered out of ID order
		peers[i] = newTestPeer(testID(i), "", time.Hour, clock)
		if !register(pool, peers[i]) {
			t.Fatalf("peer %d refused", i)
		}
	}
	ids := func(states []clientpool.ClientState) []int {
		var out []int
		for _, st := range states {
			for i, p := range peers {
				if p.node.ID() == st.ID() {
					out = append(out, i)
				}
			}
		}
		return out
	}
	check := func(maxCount int, want ...int) {
		t.Helper()
		got := ids(pool.ConnectedClients(maxCount))
		if len(got) != len(want) {
			t.Fatalf("ConnectedClients(%d) = peers %v, want %v", maxCount, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("ConnectedClients(%d) = peers %v, want %v", maxCount, got, want)
			}
		}
	}
	check(3, 0, 1, 2)
	check(10, 0, 1, 2, 3, 4)
	check(0)
	if n := pool.Connected(); n != 5 {
		t.Fatalf("Connected() = %d, want 5", n)
	}
	unregister(pool, peers[1])
	check(3, 0, 2, 3)
	for _, st := range pool.ConnectedClients(10) {
		if st.Capacity != 1 {
			t.Errorf("listed capacity %d of %v, want minCap 1", st.Capacity, st.ID())
		}
	}

	pool.Stop()
	check(10)
	if _, ok := pool.ClientInfo(peers[0].node.ID()); ok {
		t.Fatal("ClientInfo reports a client after Stop")
	}
}

func TestPricesSetByIDChangeWhatTheClientSpends(t *testing.T) {
	pool, clock := newSimPool(t, nil, 1, 0)
	pool.SetLimits(10, 100)
	pool.SetDefaultFactors(timeFactors, clientpool.PriceFactors{})
	a := newTestPeer(testID(1), "", time.Hour, clock)
	b := newTestPeer(testID(2), "", time.Hour, clock)
	for _, p := range []*testPeer{a, b} {
		addBalance(t, pool, p.node.ID(), 1e12)
		if !register(pool, p) {
			t.Fatal("registration refused")
		}
	}
	double := clientpool.PriceFactors{TimeFactor: 2, RequestFactor: 1}
	negF := clientpool.PriceFactors{TimeFactor: 0.25}
	if err := pool.SetClientFactors(a.node.ID(), double, negF); err != nil {
		t.Fatalf("SetClientFactors of a connected client: %v", err)
	}
	clock.Run(time.Second)

	sa, _ := pool.ClientInfo(a.node.ID())
	sb, _ := pool.ClientInfo(b.node.ID())
	if sa.PosFactors != double || sa.NegFactors != negF {
		t.Errorf("factors read back %+v / %+v, want %+v / %+v", sa.PosFactors, sa.NegFactors, double, negF)
	}
	if pos, neg := a.Balance().GetPriceFactors(); pos != double || neg != negF {
		t.Errorf("the ConnectedBalance reads factors %+v / %+v, want those set by ID", pos, neg)
	}
	if spentA, spentB := 1e12-sa.PosBalance, 1e12-sb.PosBalance; spentA != 2e9 || spentB != 1e9 {
		t.Errorf("in 1 s a spent %d and b %d, want 2e9 (prices doubled by ID) and 1e9", spentA, spentB)
	}

	if err := pool.SetClientFactors(testID(9), double, negF); !errors.Is(err, clientpool.ErrNotConnected) {
		t.Errorf("SetClientFactors of an unknown ID = %v, want ErrNotConnected", err)
	}
	bad := clientpool.PriceFactors{TimeFactor: math.NaN()}
	if err := pool.SetClientFactors(b.node.ID(), bad, negF); !errors.Is(err, clientpool.ErrInvalidFactors) {
		t.Errorf("SetClientFactors with NaN = %v, want ErrInvalidFactors", err)
	}
	if err := pool.SetClientFactors(b.node.ID(), timeFactors, clientpool.PriceFactors{RequestFactor: -1}); !errors.Is(err, clientpool.ErrInvalidFactors) {
		t.Errorf("SetClientFactors with a negative factor = %v, want ErrInvalidFactors", err)
	}
	if sb, _ := pool.ClientInfo(b.node.ID()); sb.PosFactors != timeFactors || sb.NegFactors != (clientpool.PriceFactors{}) {
		t.Errorf("refused factors changed b's prices to %+v / %+v", sb.PosFactors, sb.NegFactors)
	}
	unregister(pool, a)
	if err := pool.SetClientFactors(a.node.ID(), timeFactors, negF); !errors.Is(err, clientpool.ErrNotConnected) {
		t.Errorf("SetClientFactors after Unregister = %v, want ErrNotConnected", err)
	}
}

func TestCapacityQueryCountsAnswersThatBuyNothingAsZero(t *testing.T) {
	clock := new(mclock.Simulated)
	synced := false
	pool := clientpool.NewClientPool(nil, 1, time.Hour, clock, func() bool { return synced })
	pool.SetLimits(1, 1)
	pool.SetDefaultFactors(timeFactors, timeFactors)
	pool.Start()
	defer pool.Stop()
	querier := testID(7)
	want := func(zero, nonzero uint64) {
		t.Helper()
		if z, nz := pool.CapacityQueryCounts(); z != zero || nz != nonzero {
			t.Fatalf("CapacityQueryCounts() = %d zero, %d nonzero; want %d, %d", z, nz, zero, nonzero)
		}
	}
	want(0, 0)
	if r := capQuery(pool, querier, "", 0, 0, 1e9); len(r) != 2 || r[0] != 0 || r[1] != 0 {
		t.Fatalf("unsynced pool answered %v, want zeros", r)
	}
	want(1, 0)

	synced = true
	if r := capQuery(pool, querier, "", 0, 0); len(r) != 1 || r[0] == 0 {
		t.Fatalf("empty pool answered %v, want minCap", r)
	}
	want(1, 1)

	// A rich incumbent, protected for an hour, fills the pool: a free querier
	// can buy nothing.
	rich := newTestPeer(testID(1), "10.0.0.1", time.Hour, clock)
	addBalance(t, pool, rich.node.ID(), 1e15)
	register(pool, rich)
	if r := capQuery(pool, querier, "", 0, 0, 0); len(r) != 2 || r[0] != 0 || r[1] != 0 {
		t.Fatalf("full pool answered %v to a free querier, want zeros", r)
	}
	want(2, 1)

	// Requests it does not answer are counted as neither.
	if pool.Handle(querier, "", vflux.CapacityQueryName, []byte{0xff, 0x00}) != nil {
		t.Fatal("a malformed query was answered")
	}
	if pool.Handle(querier, "", vflux.BalanceQueryName, nil) == nil {
		t.Fatal("a balance query was not answered")
	}
	want(2, 1)
	pool.Stop()
	if capQuery(pool, querier, "", 0, 0) != nil {
		t.Fatal("a stopped pool answered")
	}
	want(2, 1)
}

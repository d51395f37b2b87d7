package clientpool_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

// A peer callback that calls back into the pool (Unregister from Disconnect)
// makes decisions while the outer call's callbacks are being delivered; each
// peer still ends up told what the pool decided last for it: a client the
// nested call re-activates is never left with the outer call's stale 0, and
// Active() equals the capacities told.
func TestAReentrantUnregisterLeavesNoStaleCapacity(t *testing.T) {
	pool, _ := newSimPool(t, memorydb.New(), 10, 0)
	pool.SetLimits(10, 120)
	var vlog violationLog
	peer := loggedPeers(&vlog, nil)
	paidQ, freeY, freeX, paidP := peer(1, time.Hour), peer(2, 0), peer(3, time.Hour), peer(4, time.Hour)
	freeY.onDisconnect = func(p *testPeer) { unregister(pool, p) } // re-entrant
	addBalance(t, pool, paidQ.node.ID(), 1e12)
	addBalance(t, pool, paidP.node.ID(), 1e15)
	setBalance(t, pool, freeY.node.ID(), freeY.freeID, 0, 5e9) // Y ranks below X
	for _, p := range []*testPeer{paidQ, freeY, freeX, paidP} {
		if !register(pool, p) || p.Capacity() != 10 {
			t.Fatalf("client %x not activated at minCap", p.node.ID().Bytes()[28:])
		}
	}
	if got, err := pool.SetCapacity(paidQ.node, 80, 0, true); got != 80 || err != nil {
		t.Fatalf("SetCapacity(Q, 80) = %d, %v", got, err)
	}
	// P's raise to 45 takes 25 more than the 120 there are: the plan
	// deactivates Y (disconnected at once, and unregistered from inside
	// Disconnect), then X, then cuts Q by a quarter (80 to 60), which leaves 15
	// free: the nested Unregister of Y re-activates X at minCap.
	if got, err := pool.SetCapacity(paidP.node, 45, 0, true); got != 45 || err != nil {
		t.Fatalf("SetCapacity(P, 45) = %d, %v", got, err)
	}
	count, capacity := pool.Active()
	var told, toldCount uint64
	for _, p := range []*testPeer{paidQ, freeX, paidP} {
		if c := p.Capacity(); c > 0 {
			told += c
			toldCount++
		}
	}
	if count != toldCount || capacity != told {
		t.Errorf("Active() = (%d, %d), peers were told %d clients with %d: Q %v, X %v, P %v",
			count, capacity, toldCount, told, paidQ.Updates(), freeX.Updates(), paidP.Updates())
	}
	if !freeY.Disconnected() {
		t.Errorf("Y was not disconnected (updates %v)", freeY.Updates())
	}
	if v := vlog.all(); len(v) > 0 {
		t.Errorf("callback contract broken:\n  %s", strings.Join(v, "\n  "))
	}
}

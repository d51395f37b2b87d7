package clientpool_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/vflux"
)

// This file holds what the black-box tests of the pool share: a fake Peer that
// records every callback, node helpers and thin wrappers around
// BalanceOperation and the vflux service.

// capUpdate is one UpdateCapacity call as a testPeer saw it.
type capUpdate struct {
	cap       uint64
	requested bool
	at        mclock.AbsTime
}

// testPeer is a clientpool.Peer that records every UpdateCapacity and Disconnect
// and checks the callback contract it can see on its own: no duplicate capacity
// report, nothing after Disconnect but a zero, nothing at all after Unregister.
type testPeer struct {
	node      *enode.Node
	freeID    string
	allowance time.Duration
	clock     mclock.Clock // timestamps of callbacks; may be nil

	// onUpdate and onDisconnect run after the peer recorded the callback, outside
	// its lock, on the pool's callback goroutine. onDisconnect typically calls
	// Unregister, re-entrantly or by queueing it.
	onUpdate     func(p *testPeer, u capUpdate)
	onDisconnect func(p *testPeer)
	// log, if set, also receives every violation, so a test with thousands of
	// peers need not poll each of them.
	log *violationLog
	// concurrent tolerates callbacks that race with this peer's own Unregister
	// on another goroutine: a delivery already under way when Unregister starts
	// cannot be called back, and the pool cannot wait for it either (the
	// Unregister may come from inside that very callback).
	concurrent bool

	mu            sync.Mutex
	updates       []capUpdate
	capacity      uint64 // last reported capacity
	disconnects   int
	unregistering bool // Unregister of this peer is running
	unregistered  bool // Unregister of this peer has returned
	violations    []string
	balance       clientpool.ConnectedBalance // what Register returned
}

func newTestPeer(id enode.ID, freeID string, allowance time.Duration, clock mclock.Clock) *testPeer {
	return &testPeer{node: testNode(id), freeID: freeID, allowance: allowance, clock: clock}
}

func (p *testPeer) Node() *enode.Node                { return p.node }
func (p *testPeer) FreeClientID() string             { return p.freeID }
func (p *testPeer) InactiveAllowance() time.Duration { return p.allowance }

func (p *testPeer) UpdateCapacity(newCap uint64, requested bool) {
	u := capUpdate{cap: newCap, requested: requested}
	if p.clock != nil {
		u.at = p.clock.Now()
	}
	p.mu.Lock()
	switch {
	case p.concurrent && (p.unregistered || p.unregistering):
	case p.unregistered:
		p.violate("UpdateCapacity(%d, %v) after Unregister returned", newCap, requested)
	case p.unregistering && newCap != 0:
		p.violate("UpdateCapacity(%d, %v) during its own Unregister", newCap, requested)
	case p.disconnects > 0 && newCap != 0:
		p.violate("UpdateCapacity(%d, %v) after Disconnect: a disconnected client was reactivated", newCap, requested)
	case newCap == p.capacity && !requested:
		p.violate("UpdateCapacity(%d) reported twice (unrequested duplicate)", newCap)
	}
	p.updates = append(p.updates, u)
	p.capacity = newCap
	cb := p.onUpdate
	p.mu.Unlock()
	if cb != nil {
		cb(p, u)
	}
}

func (p *testPeer) Disconnect() {
	p.mu.Lock()
	if p.unregistered && !p.concurrent {
		p.violate("Disconnect after Unregister returned")
	}
	p.disconnects++
	if p.disconnects > 1 {
		p.violate("Disconnect called %d times", p.disconnects)
	}
	cb := p.onDisconnect
	p.mu.Unlock()
	if cb != nil {
		cb(p)
	}
}

// violate records a broken callback contract; p.mu is held.
func (p *testPeer) violate(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	p.violations = append(p.violations, msg)
	if p.log != nil {
		p.log.add(fmt.Sprintf("peer %x: %s", p.node.ID().Bytes()[24:], msg))
	}
}

// violationLog collects the violations of many peers.
type violationLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *violationLog) add(msg string) {
	l.mu.Lock()
	l.msgs = append(l.msgs, msg)
	l.mu.Unlock()
}

func (l *violationLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

// Capacity is the last capacity reported to the peer (0 before any report).
func (p *testPeer) Capacity() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.capacity
}

// Disconnected tells whether the pool has told the peer to disconnect.
func (p *testPeer) Disconnected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.disconnects > 0
}

// Updates returns a copy of every capacity report so far.
func (p *testPeer) Updates() []capUpdate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]capUpdate(nil), p.updates...)
}

// Violations returns the callback contract violations the peer saw.
func (p *testPeer) Violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.violations...)
}

// isUnregistered tells whether Unregister of this peer has returned.
func (p *testPeer) isUnregistered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unregistered
}

// Balance is the ConnectedBalance that Register returned.
func (p *testPeer) Balance() clientpool.ConnectedBalance {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.balance
}

// register registers p and keeps the ConnectedBalance; it reports whether the
// pool accepted it.
func register(pool *clientpool.ClientPool, p *testPeer) bool {
	b := pool.Register(p)
	if b == nil {
		return false
	}
	p.mu.Lock()
	p.balance = b
	p.mu.Unlock()
	return true
}

// unregister unregisters p and records that it did, so that later callbacks on p
// count as violations.
func unregister(pool *clientpool.ClientPool, p *testPeer) {
	p.mu.Lock()
	p.unregistering = true
	p.mu.Unlock()
	pool.Unregister(p)
	p.mu.Lock()
	p.unregistering = false
	p.unregistered = true
	p.mu.Unlock()
}

// testID returns a node ID derived from i; IDs of increasing i sort ascending.
func testID(i int) enode.ID {
	var id enode.ID
	binary.BigEndian.PutUint64(id[24:], uint64(i)+1)
	return id
}

// testNode returns an unsigned node record with the given ID.
func testNode(id enode.ID) *enode.Node {
	return enode.SignNull(new(enr.Record), id)
}

// alwaysSynced is the pool's synced callback for a node that is always ready.
func alwaysSynced() bool { return true }

// newSimPool creates and starts a pool on a simulated clock; it is stopped at
// the end of the test.
func newSimPool(t testing.TB, db ethdb.KeyValueStore, minCap uint64, bias time.Duration) (*clientpool.ClientPool, *mclock.Simulated) {
	t.Helper()
	clock := new(mclock.Simulated)
	pool := clientpool.NewClientPool(db, minCap, bias, clock, alwaysSynced)
	pool.Start()
	t.Cleanup(pool.Stop)
	return pool, clock
}

// getBalance reads the balances of a node ID and free-client ID, connected or not.
func getBalance(pool *clientpool.ClientPool, id enode.ID, freeID string) (pos, neg uint64) {
	pool.BalanceOperation(id, freeID, func(op clientpool.AtomicBalanceOperator) {
		pos, neg = op.GetBalance()
	})
	return pos, neg
}

// addBalance adds amount to the positive balance of id and fails the test on error.
func addBalance(t testing.TB, pool *clientpool.ClientPool, id enode.ID, amount int64) (old, new uint64) {
	t.Helper()
	var err error
	pool.BalanceOperation(id, "", func(op clientpool.AtomicBalanceOperator) {
		old, new, err = op.AddBalance(amount)
	})
	if err != nil {
		t.Fatalf("AddBalance(%v, %d): %v", id, amount, err)
	}
	return old, new
}

// setBalance sets both balances and fails the test on error.
func setBalance(t testing.TB, pool *clientpool.ClientPool, id enode.ID, freeID string, pos, neg uint64) {
	t.Helper()
	var err error
	pool.BalanceOperation(id, freeID, func(op clientpool.AtomicBalanceOperator) {
		err = op.SetBalance(pos, neg)
	})
	if err != nil {
		t.Fatalf("SetBalance(%v, %q, %d, %d): %v", id, freeID, pos, neg, err)
	}
}

// encodeCapQuery encodes a "cq" request for the given bias and token amounts.
func encodeCapQuery(bias uint64, amounts ...int64) []byte {
	req := vflux.CapacityQueryReq{Bias: bias, AddTokens: make([]vflux.IntOrInf, len(amounts))}
	for i, a := range amounts {
		req.AddTokens[i].SetInt64(a)
	}
	enc, err := rlp.EncodeToBytes(&req)
	if err != nil {
		panic(err) // a well-formed request always encodes
	}
	return enc
}

// capQuery asks the pool's "cq" service; it returns nil if there is no
// decodable reply.
func capQuery(pool *clientpool.ClientPool, id enode.ID, freeID string, bias uint64, amounts ...int64) vflux.CapacityQueryReply {
	enc := pool.Handle(id, freeID, vflux.CapacityQueryName, encodeCapQuery(bias, amounts...))
	var reply vflux.CapacityQueryReply
	if enc == nil || rlp.DecodeBytes(enc, &reply) != nil {
		return nil
	}
	return reply
}

// within reports whether got is within frac (relative) of want.
func within(got, want, frac float64) bool {
	if want == 0 {
		return got == 0
	}
	return math.Abs(got-want) <= math.Abs(want)*frac
}

// timeFactors are the price factors of the fairness and timer scenarios: one
// token per nanosecond of active time, nothing for capacity, one per request cost.
var timeFactors = clientpool.PriceFactors{TimeFactor: 1, CapacityFactor: 0, RequestFactor: 1}

// loggedPeers returns a constructor of test peers (ID i, free ID 10.0.0.i)
// that record their capacity violations in vlog.
func loggedPeers(vlog *violationLog, clock mclock.Clock) func(i int, allowance time.Duration) *testPeer {
	return func(i int, allowance time.Duration) *testPeer {
		p := newTestPeer(testID(i), fmt.Sprintf("10.0.0.%d", i), allowance, clock)
		p.log = vlog
		return p
	}
}

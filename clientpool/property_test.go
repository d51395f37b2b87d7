package clientpool_test

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
)

// The randomized property test drives a pool on a simulated clock with
// thousands of random public calls and checks the invariants of SPEC 3.2 after
// every one of them. The same operation sequence can be decoded from fuzz input
// (fuzz_test.go), so a fuzzer finding replays as a plain test.

// chooser is the source of the operation sequence: a seeded RNG for the property
// test, the fuzz input bytes for the fuzz target.
type chooser interface {
	intn(n int) int // in [0, n); n > 0
	uint64() uint64
	bytes(n int) []byte
	done() bool
}

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.Intn(n) }
func (c randChooser) uint64() uint64 { return c.r.Uint64() }
func (c randChooser) done() bool     { return false }
func (c randChooser) bytes(n int) []byte {
	b := make([]byte, n)
	c.r.Read(b)
	return b
}

// Sizes of the simulated world: IDs and free-client IDs are drawn from small
// sets so that balances are reused and free-client IDs are shared.
const (
	modelIDs     = 48
	modelFreeIDs = 8
)

var (
	modelAllowances = []time.Duration{0, 0, time.Second, 10 * time.Second, time.Minute, time.Hour}
	modelBiases     = []time.Duration{0, time.Second, 10 * time.Second, 3 * time.Minute}
	modelTCs        = []uint64{0, 0, 10, 100, 3600}
	modelSteps      = []time.Duration{0, time.Millisecond, 100 * time.Millisecond, time.Second, 5 * time.Second,
		30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour}
	modelTimeFactors = []float64{0, 0.1, 1, 10}
	modelCapFactors  = []float64{0, 1, 1000}
	modelReqFactors  = []float64{0, 1, 1000}
	modelAmounts     = []int64{1, 1e6, 1e6 + 1, 1e9, 1e10, 1e11, 1e12, 1e13, math.MaxInt64 / 2, math.MaxInt64,
		-1, -1e9, -1e12, math.MinInt64}
	modelSetAmounts = []uint64{0, 1, 1e6, 1e9, 1e11, 1e12, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64}
)

// poolModel is the pool under test plus everything the test knows about it.
type poolModel struct {
	t      testing.TB
	pool   *clientpool.ClientPool
	clock  *mclock.Simulated
	minCap uint64
	bias   time.Duration

	peers    []*testPeer // every peer ever accepted, in registration order
	live     map[*testPeer]bool
	deferred []*testPeer                  // told to disconnect, Unregister still to come
	inSince  map[*testPeer]mclock.AbsTime // when the peer was last told capacity 0
	// noPrioSince is when the model first saw a waiting peer without a
	// positive balance, since it last saw it active or with one.
	noPrioSince map[*testPeer]mclock.AbsTime
	allow       map[*testPeer]time.Duration
	steps       int
	history     []string // the last operations, for failure messages
	vlog        violationLog
	seen        coverage
	// window is the clock.Run step of the current operation, 0 for the
	// others (see checkInvariants).
	window time.Duration
}

// coverage counts what a run exercised, so a test can insist that its random
// operations reached the interesting states (a pool that never activated
// anybody would satisfy every invariant).
type coverage struct {
	activations, deactivations, disconnects, reentrant int
	raises, partialGrants, noPriority, decreases       int
	cqAnswered, cqNonZero, corruptAnswered             int
	addBalance, setBalance, balanceErrors, timeSteps   int
}

func newPoolModel(t testing.TB, minCap uint64) *poolModel {
	m := &poolModel{
		t:           t,
		clock:       new(mclock.Simulated),
		minCap:      minCap,
		live:        make(map[*testPeer]bool),
		inSince:     make(map[*testPeer]mclock.AbsTime),
		noPrioSince: make(map[*testPeer]mclock.AbsTime),
		allow:       make(map[*testPeer]time.Duration),
	}
	m.pool = clientpool.NewClientPool(memorydb.New(), minCap, 0, m.clock, alwaysSynced)
	m.pool.Start()
	m.pool.SetLimits(10, 10*minCap)
	return m
}

func (m *poolModel) logf(format string, args ...interface{}) {
	m.history = append(m.history, fmt.Sprintf("%d: ", m.steps)+fmt.Sprintf(format, args...))
	if len(m.history) > 30 {
		m.history = m.history[1:]
	}
}

func (m *poolModel) failf(format string, args ...interface{}) {
	m.t.Helper()
	m.t.Fatalf("after step %d: %s\nlast operations:\n  %s", m.steps, fmt.Sprintf(format, args...),
		strings.Join(m.history, "\n  "))
}

// livePeers returns the registered peers not yet unregistered, in a stable order.
func (m *poolModel) livePeers() []*testPeer {
	var ps []*testPeer
	for _, p := range m.peers {
		if m.live[p] {
			ps = append(ps, p)
		}
	}
	return ps
}

func (m *poolModel) randomLive(c chooser) *testPeer {
	ps := m.livePeers()
	if len(ps) == 0 {
		return nil
	}
	return ps[c.intn(len(ps))]
}

func (m *poolModel) isLiveID(id enode.ID) bool {
	return m.livePeer(id) != nil
}

func (m *poolModel) livePeer(id enode.ID) *testPeer {
	for p := range m.live {
		if p.node.ID() == id {
			return p
		}
	}
	return nil
}

// randomIdentity picks a node ID and the free-client ID that goes with it: a
// connected client's own, else a random one.
func (m *poolModel) randomIdentity(c chooser) (enode.ID, string, *testPeer) {
	id := testID(c.intn(modelIDs))
	freeID := modelFreeID(c.intn(modelFreeIDs + 1))
	if p := m.livePeer(id); p != nil {
		return id, p.freeID, p
	}
	return id, freeID, nil
}

func modelFreeID(i int) string {
	if i == modelFreeIDs {
		return "" // no negative balance
	}
	return fmt.Sprintf("10.0.0.%d", i)
}

// step runs one random public operation and checks the invariants.
func (m *poolModel) step(c chooser) {
	m.steps++
	switch op := c.intn(20); op {
	case 0, 1, 2, 3:
		m.opRegister(c)
	case 4, 5:
		m.opUnregister(c)
	case 6:
		m.opFlushDeferred()
	case 7:
		m.opSetLimits(c)
	case 8:
		b := modelBiases[c.intn(len(modelBiases))]
		m.logf("SetConnectedBias(%v)", b)
		m.pool.SetConnectedBias(b)
		m.bias = b
	case 9:
		m.opSetDefaultFactors(c)
	case 10:
		pos, neg := modelTCs[c.intn(len(modelTCs))], modelTCs[c.intn(len(modelTCs))]
		m.logf("SetExpirationTCs(%d, %d)", pos, neg)
		m.pool.SetExpirationTCs(pos, neg)
		if gp, gn := m.pool.GetExpirationTCs(); gp != pos || gn != neg {
			m.failf("GetExpirationTCs() = (%d, %d) after SetExpirationTCs(%d, %d)", gp, gn, pos, neg)
		}
	case 11:
		m.opSetCapacity(c)
	case 12:
		m.opBalance(c)
	case 13:
		m.opCapQuery(c)
	case 14:
		m.opCorruptQuery(c)
	case 15:
		m.opBalanceAndInfoQuery(c)
	case 16, 17:
		d := modelSteps[c.intn(len(modelSteps))]
		m.logf("clock.Run(%v)", d)
		m.window = d
		m.clock.Run(d)
		m.seen.timeSteps++
	case 18:
		m.opRequestServed(c)
	case 19:
		m.opRegisterDuplicate(c)
	}
	m.checkInvariants()
	m.window = 0
}

// checkInvariants checks SPEC 3.2's invariants against what the peers were told.
func (m *poolModel) checkInvariants() {
	m.t.Helper()
	count, capacity := m.pool.Active()
	maxCount, maxCap := m.pool.Limits()
	if count > maxCount || capacity > maxCap {
		m.failf("Active() = (%d, %d) exceeds Limits() = (%d, %d)", count, capacity, maxCount, maxCap)
	}
	var told, toldCount, waiting uint64
	now := m.clock.Now()
	for _, p := range m.livePeers() {
		if p.Disconnected() {
			continue
		}
		c := p.Capacity()
		if c == 0 {
			waiting++
			m.checkAllowance(p, now)
			continue
		}
		delete(m.noPrioSince, p)
		if c < m.minCap {
			m.failf("active client %x has capacity %d below minCap %d", p.node.ID().Bytes()[28:], c, m.minCap)
		}
		var carry uint64
		if told, carry = bits.Add64(told, c, 0); carry != 0 {
			m.failf("the capacities told to the peers sum to more than 2^64-1 (Active() = (%d, %d))", count, capacity)
		}
		toldCount++
	}
	if toldCount != count || told != capacity {
		m.failf("Active() = (%d, %d) but peers were told %d clients with total capacity %d\npeers:\n  %s",
			count, capacity, toldCount, told, strings.Join(m.describePeers(), "\n  "))
	}
	if in := m.pool.Inactive(); uint64(in) != waiting {
		m.failf("Inactive() = %d but %d registered, not disconnected peers have capacity 0", in, waiting)
	}
	if v := m.vlog.all(); len(v) > 0 {
		m.failf("callback contract broken:\n  %s", strings.Join(v, "\n  "))
	}
}

// checkAllowance checks that a waiting peer without a positive balance is
// disconnected once its inactive allowance, counted from when it was told
// capacity 0 or lost its balance (spent, taken or decayed away), whichever
// came later, has run out. A peer with a positive balance may wait forever.
// The loss is seen at the end of the step it happened in, which is never
// earlier than the pool saw it. mclock.Simulated runs every timer of a Run(d)
// window at the window's end: an allowance due inside the current window may
// be handled up to one window late, never more (an activation the peer never
// saw does not restart it).
func (m *poolModel) checkAllowance(p *testPeer, now mclock.AbsTime) {
	m.t.Helper()
	if b := p.Balance(); b != nil {
		if pos, _ := b.GetBalance(); pos > 0 {
			delete(m.noPrioSince, p)
			return
		}
	}
	if _, ok := m.noPrioSince[p]; !ok {
		m.noPrioSince[p] = now
	}
	start := m.inSince[p]
	if s := m.noPrioSince[p]; s > start {
		start = s
	}
	if since := time.Duration(now - start); since > m.allow[p]+m.window {
		m.failf("client %x without priority waiting for %v, past its allowance %v, and not disconnected (inactive since %v, no balance since %v)",
			p.node.ID().Bytes()[28:], since, m.allow[p], time.Duration(m.inSince[p]), time.Duration(m.noPrioSince[p]))
	}
}

// describePeers lists the live peers and what they were told, for failure messages.
func (m *poolModel) describePeers() []string {
	var lines []string
	for _, p := range m.livePeers() {
		u := p.Updates()
		if len(u) > 4 {
			u = u[len(u)-4:]
		}
		lines = append(lines, fmt.Sprintf("%x free %q cap %d disconnected %v last updates %v",
			p.node.ID().Bytes()[28:], p.freeID, p.Capacity(), p.Disconnected(), u))
	}
	return lines
}

// finish stops the pool and checks that a stopped pool refuses registrations.
func (m *poolModel) finish() {
	m.pool.Stop()
	if b := m.pool.Register(newTestPeer(testID(modelIDs+1), "", time.Hour, m.clock)); b != nil {
		m.failf("Register after Stop returned a balance")
	}
	for _, p := range m.livePeers() {
		unregister(m.pool, p) // harmless after Stop
	}
}

// balanceClose compares balances allowing for the float rounding of expiring values.
func balanceClose(a, b uint64) bool {
	d := float64(a) - float64(b)
	return math.Abs(d) <= 2+1e-9*math.Max(float64(a), float64(b))
}

func TestPoolInvariantsHoldUnderRandomOperations(t *testing.T) {
	tests := []struct {
		name   string
		seed   int64
		minCap uint64
		steps  int
	}{
		{"with minCap 1 the invariants hold after every step", 1, 1, 8000},
		{"with minCap 100 the invariants hold after every step", 2, 100, 8000},
		{"with minCap 1000 the invariants hold after every step", 3, 1000, 8000},
		{"with minCap 10 and another seed the invariants hold after every step", 4, 10, 8000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newPoolModel(t, tt.minCap)
			c := randChooser{rand.New(rand.NewSource(tt.seed))}
			for i := 0; i < tt.steps; i++ {
				m.step(c)
			}
			m.finish()
			t.Logf("exercised: %+v", m.seen)
			// The random operations must reach the states the invariants are
			// about; each of these happens hundreds of times in a normal run.
			for name, n := range map[string]int{
				"activations": m.seen.activations, "deactivations": m.seen.deactivations,
				"disconnects": m.seen.disconnects, "re-entrant unregisters": m.seen.reentrant,
				"granted raises": m.seen.raises, "partial grants": m.seen.partialGrants,
				"refused raises": m.seen.noPriority, "decreases": m.seen.decreases,
				"non-zero capacity answers": m.seen.cqNonZero, "balance errors": m.seen.balanceErrors,
			} {
				if n < 10 {
					t.Errorf("only %d %s in %d steps: the random operations no longer exercise the pool", n, name, tt.steps)
				}
			}
		})
	}
}

// TestConcurrentCallersKeepThePoolConsistent has several goroutines make
// public calls at once (SPEC 3.2 Concurrency: all methods are safe for
// concurrent use) while another drives the clock, with peers that unregister
// from inside Disconnect. Once everything has returned, the peers must have
// been told exactly what the pool counts.
func TestConcurrentCallersKeepThePoolConsistent(t *testing.T) {
	const (
		callers   = 4
		idsEach   = 24
		opsEach   = 1500
		clockRuns = 1500
	)
	pool, clock := newSimPool(t, memorydb.New(), 10, time.Second)
	pool.SetLimits(8, 160)
	pool.SetDefaultFactors(timeFactors, timeFactors)
	var (
		vlog  violationLog
		wg    sync.WaitGroup
		peers = make([][]*testPeer, callers)
	)
	allowances := []time.Duration{0, 100 * time.Millisecond, time.Second, time.Hour}
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func(g int, rng *rand.Rand) {
			defer wg.Done()
			live := make(map[int]*testPeer)
			for i := 0; i < opsEach; i++ {
				idx := g*idsEach + rng.Intn(idsEach)
				p := live[idx]
				if p != nil && p.isUnregistered() {
					delete(live, idx)
					p = nil
				}
				switch op := rng.Intn(6); {
				case p == nil && op < 3:
					p = newTestPeer(testID(idx), fmt.Sprintf("10.1.%d.%d", g, idx%8), allowances[rng.Intn(len(allowances))], nil)
					p.log, p.concurrent = &vlog, true
					p.onDisconnect = func(p *testPeer) { unregister(pool, p) }
					if register(pool, p) {
						live[idx] = p
						peers[g] = append(peers[g], p)
					}
				case p == nil:
					pool.BalanceOperation(testID(idx), "", func(op clientpool.AtomicBalanceOperator) {
						op.AddBalance(int64(rng.Intn(5)) * 1e9)
					})
				case op == 0:
					unregister(pool, p)
					delete(live, idx)
				case op < 3:
					pool.SetCapacity(p.node, uint64(rng.Intn(60)), 0, true)
				case op == 3:
					pool.BalanceOperation(p.node.ID(), p.freeID, func(op clientpool.AtomicBalanceOperator) {
						op.AddBalance(int64(rng.Intn(3)) * 1e9)
					})
				case op == 4:
					capQuery(pool, p.node.ID(), p.freeID, 10, 0, 1e9, 1e10)
				default:
					p.Balance().RequestServed(uint64(rng.Intn(1000)))
				}
			}
		}(g, rand.New(rand.NewSource(int64(g+1))))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < clockRuns; i++ {
			clock.Run(50 * time.Millisecond)
		}
	}()
	wg.Wait()

	count, capacity := pool.Active()
	var told, toldCount, waiting uint64
	var updates, disconnects int
	for _, ps := range peers {
		for _, p := range ps {
			updates += len(p.Updates())
			if p.Disconnected() {
				disconnects++
			}
			if p.isUnregistered() || p.Disconnected() {
				continue
			}
			if c := p.Capacity(); c > 0 {
				told += c
				toldCount++
			} else {
				waiting++
			}
		}
	}
	t.Logf("%d capacity updates, %d disconnects", updates, disconnects)
	if updates < 400 || disconnects < 10 {
		t.Errorf("only %d capacity updates and %d disconnects: the callers no longer exercise the pool", updates, disconnects)
	}
	if count != toldCount || capacity != told {
		t.Errorf("Active() = (%d, %d) but peers were told %d clients with total capacity %d", count, capacity, toldCount, told)
	}
	if in := pool.Inactive(); uint64(in) != waiting {
		t.Errorf("Inactive() = %d but %d registered peers have capacity 0", in, waiting)
	}
	if v := vlog.all(); len(v) > 0 {
		t.Errorf("callback contract broken:\n  %s", strings.Join(v, "\n  "))
	}
}

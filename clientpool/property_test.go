package clientpool_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
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
	deferred []*testPeer       // told to disconnect, Unregister still to come
	everPaid map[enode.ID]bool // IDs that may have had a positive balance
	inSince  map[*testPeer]mclock.AbsTime
	allow    map[*testPeer]time.Duration
	steps    int
	history  []string // the last operations, for failure messages
	vlog     violationLog
	seen     coverage
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
		t:        t,
		clock:    new(mclock.Simulated),
		minCap:   minCap,
		live:     make(map[*testPeer]bool),
		everPaid: make(map[enode.ID]bool),
		inSince:  make(map[*testPeer]mclock.AbsTime),
		allow:    make(map[*testPeer]time.Duration),
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
		m.clock.Run(d)
		m.seen.timeSteps++
	case 18:
		m.opRequestServed(c)
	case 19:
		m.opRegisterDuplicate(c)
	}
	m.checkInvariants()
}

func (m *poolModel) opRegister(c chooser) {
	id := testID(c.intn(modelIDs))
	if m.isLiveID(id) {
		return // opRegisterDuplicate covers this
	}
	p := newTestPeer(id, modelFreeID(c.intn(modelFreeIDs+1)), modelAllowances[c.intn(len(modelAllowances))], m.clock)
	p.log = &m.vlog
	reentrant := c.intn(2) == 0
	if reentrant {
		p.onDisconnect = func(p *testPeer) {
			m.seen.disconnects++
			m.seen.reentrant++
			unregister(m.pool, p)
			delete(m.live, p)
		}
	} else {
		p.onDisconnect = func(p *testPeer) {
			m.seen.disconnects++
			m.deferred = append(m.deferred, p)
		}
	}
	var last uint64
	p.onUpdate = func(p *testPeer, u capUpdate) {
		switch {
		case u.cap == 0:
			m.inSince[p] = m.clock.Now()
			m.seen.deactivations++
		case last == 0:
			m.seen.activations++
		}
		last = u.cap
	}
	m.logf("Register(%x, free %q, allowance %v, reentrant %v)", id[28:], p.freeID, p.allowance, reentrant)
	m.peers = append(m.peers, p)
	m.live[p] = true // before Register: a re-entrant Unregister may run inside it
	m.inSince[p] = m.clock.Now()
	m.allow[p] = p.allowance
	if !register(m.pool, p) {
		m.failf("Register of a new ID %x returned nil", id[28:])
	}
	if p.allowance == 0 && !m.everPaid[id] && p.Capacity() == 0 && !p.Disconnected() {
		m.failf("free client with allowance 0 is inactive but not disconnected when Register returned")
	}
}

func (m *poolModel) opRegisterDuplicate(c chooser) {
	orig := m.randomLive(c)
	if orig == nil {
		return
	}
	dup := newTestPeer(orig.node.ID(), orig.freeID, time.Hour, m.clock)
	dup.log = &m.vlog
	m.logf("Register(duplicate of %x)", orig.node.ID().Bytes()[28:])
	if b := m.pool.Register(dup); b != nil {
		m.failf("Register of an already registered ID returned a balance")
	}
	if u := dup.Updates(); len(u) != 0 || dup.Disconnected() {
		m.failf("rejected duplicate peer got callbacks: %v, disconnected %v", u, dup.Disconnected())
	}
}

func (m *poolModel) opUnregister(c chooser) {
	p := m.randomLive(c)
	if p == nil {
		return
	}
	id := p.node.ID()
	var pos, neg uint64
	if b := p.Balance(); b != nil {
		pos, neg = b.GetBalance()
	}
	m.logf("Unregister(%x) with balance (%d, %d), cap %d, disconnected %v", id[28:], pos, neg, p.Capacity(), p.Disconnected())
	unregister(m.pool, p)
	delete(m.live, p)
	m.removeDeferred(p)
	// Unregister settles and persists: the stored balance is what the client had,
	// except that a small value may be dropped (SPEC 2.5).
	gpos, gneg := getBalance(m.pool, id, p.freeID)
	if !balanceClose(gpos, pos) && !(pos <= params.BalanceDropThreshold && gpos == 0) {
		m.failf("positive balance %d after Unregister, was %d before", gpos, pos)
	}
	if !balanceClose(gneg, neg) && !(neg <= params.BalanceDropThreshold && gneg == 0) {
		m.failf("negative balance %d after Unregister, was %d before", gneg, neg)
	}
}

func (m *poolModel) removeDeferred(p *testPeer) {
	for i, q := range m.deferred {
		if q == p {
			m.deferred = append(m.deferred[:i], m.deferred[i+1:]...)
			return
		}
	}
}

func (m *poolModel) opFlushDeferred() {
	m.logf("Unregister %d deferred disconnected peers", len(m.deferred))
	for len(m.deferred) > 0 {
		p := m.deferred[0]
		m.deferred = m.deferred[1:]
		if m.live[p] {
			unregister(m.pool, p)
			delete(m.live, p)
		}
	}
}

func (m *poolModel) opSetLimits(c chooser) {
	count := uint64(c.intn(16))
	capacity := count * m.minCap * uint64(1+c.intn(4))
	if c.intn(8) == 0 {
		capacity = uint64(c.intn(int(4*m.minCap) + 1)) // may be below minCap
	}
	m.logf("SetLimits(%d, %d)", count, capacity)
	m.pool.SetLimits(count, capacity)
	if gc, gcap := m.pool.Limits(); gc != count || gcap != capacity {
		m.failf("Limits() = (%d, %d) after SetLimits(%d, %d)", gc, gcap, count, capacity)
	}
}

func randomFactors(c chooser) clientpool.PriceFactors {
	return clientpool.PriceFactors{
		TimeFactor:     modelTimeFactors[c.intn(len(modelTimeFactors))],
		CapacityFactor: modelCapFactors[c.intn(len(modelCapFactors))],
		RequestFactor:  modelReqFactors[c.intn(len(modelReqFactors))],
	}
}

func (m *poolModel) opSetDefaultFactors(c chooser) {
	pos, neg := randomFactors(c), randomFactors(c)
	if p := m.randomLive(c); p != nil && c.intn(2) == 0 {
		m.logf("SetPriceFactors(%x, %+v, %+v)", p.node.ID().Bytes()[28:], pos, neg)
		if b := p.Balance(); b != nil {
			b.SetPriceFactors(pos, neg)
			if gp, gn := b.GetPriceFactors(); gp != pos || gn != neg {
				m.failf("GetPriceFactors() = %+v, %+v after SetPriceFactors(%+v, %+v)", gp, gn, pos, neg)
			}
		}
		return
	}
	m.logf("SetDefaultFactors(%+v, %+v)", pos, neg)
	m.pool.SetDefaultFactors(pos, neg)
}

// randomPaidLive picks a live peer with a positive balance, if there is one.
func (m *poolModel) randomPaidLive(c chooser) *testPeer {
	var paid []*testPeer
	for _, p := range m.livePeers() {
		if b := p.Balance(); b != nil && !p.Disconnected() {
			if pos, _ := b.GetBalance(); pos > 0 {
				paid = append(paid, p)
			}
		}
	}
	if len(paid) == 0 {
		return nil
	}
	return paid[c.intn(len(paid))]
}

func (m *poolModel) opSetCapacity(c chooser) {
	p := m.randomLive(c)
	if c.intn(2) == 0 {
		if paid := m.randomPaidLive(c); paid != nil {
			p = paid
		}
	}
	if p == nil {
		return
	}
	maxCount, maxCap := m.pool.Limits()
	_ = maxCount
	req := uint64(c.intn(int(2*maxCap) + 2))
	bias := modelBiases[c.intn(len(modelBiases))]
	cur := p.Capacity()
	var pos uint64
	if b := p.Balance(); b != nil {
		pos, _ = b.GetBalance()
	}
	disconnected := p.Disconnected()
	got, err := m.pool.SetCapacity(p.node, req, bias, true)
	m.logf("SetCapacity(%x, %d, %v) with cap %d, pos %d = %d, %v", p.node.ID().Bytes()[28:], req, bias, cur, pos, got, err)
	target := req
	if target < m.minCap {
		target = m.minCap
	}
	switch {
	case disconnected:
		if got != 0 {
			m.failf("SetCapacity granted %d to a client told to disconnect", got)
		}
	case cur == 0:
		if got != 0 || err != nil {
			m.failf("SetCapacity of an inactive client = %d, %v; want 0, nil", got, err)
		}
	case target <= cur:
		m.seen.decreases++
		if got != target || err != nil {
			m.failf("decrease from %d to %d returned %d, %v; a decrease always succeeds", cur, target, got, err)
		}
	case pos == 0:
		m.seen.noPriority++
		if !errors.Is(err, clientpool.ErrNoPriority) {
			m.failf("raise from %d to %d without a positive balance returned %d, %v; want ErrNoPriority", cur, target, got, err)
		}
		if now := p.Capacity(); now != cur {
			m.failf("refused raise changed the capacity from %d to %d", cur, now)
		}
	default:
		if err != nil || got < cur || got > target {
			m.failf("raise from %d to %d returned %d, %v; want a grant in [%d, %d] and nil", cur, target, got, err, cur, target)
		}
		if got == target {
			m.seen.raises++
		} else {
			m.seen.partialGrants++
		}
	}
	if err == nil && !disconnected && cur != 0 {
		if now := p.Capacity(); now != got {
			m.failf("SetCapacity returned %d but the peer was told %d", got, now)
		}
		if got != cur {
			u := p.Updates()
			if last := u[len(u)-1]; !last.requested {
				m.failf("requested capacity change reported with requested=false")
			}
		}
	}
}

func (m *poolModel) opBalance(c chooser) {
	id, freeID, _ := m.randomIdentity(c)
	if p := m.randomLive(c); p != nil && c.intn(2) == 0 {
		id, freeID = p.node.ID(), p.freeID
	}
	if c.intn(2) == 0 {
		amount := modelAmounts[c.intn(len(modelAmounts))]
		if amount > 0 {
			m.everPaid[id] = true
		}
		m.seen.addBalance++
		var (
			before, after uint64
			old, new      uint64
			err           error
		)
		m.pool.BalanceOperation(id, freeID, func(op clientpool.AtomicBalanceOperator) {
			before, _ = op.GetBalance()
			old, new, err = op.AddBalance(amount)
			after, _ = op.GetBalance()
		})
		m.logf("AddBalance(%x, %d) from %d = %d, %d, %v", id[28:], amount, before, old, new, err)
		want := float64(before) + float64(amount)
		switch {
		case err != nil:
			m.seen.balanceErrors++
			if after != before {
				m.failf("failed AddBalance changed the balance from %d to %d", before, after)
			}
			if want < math.MaxInt64*0.999 {
				m.failf("AddBalance(%d) on %d failed: %v", amount, before, err)
			}
		case want > math.MaxInt64*1.001 || new > math.MaxInt64:
			m.failf("AddBalance(%d) on %d overflowed MaxInt64 without an error: new %d", amount, before, new)
		default:
			if want < 0 {
				want = 0
			}
			if !balanceClose(old, before) || !balanceClose(new, uint64(want)) || !balanceClose(after, new) {
				m.failf("AddBalance(%d) on %d returned (%d, %d), reads %d", amount, before, old, new, after)
			}
		}
		return
	}
	pos := modelSetAmounts[c.intn(len(modelSetAmounts))]
	neg := modelSetAmounts[c.intn(len(modelSetAmounts))]
	if pos > 0 {
		m.everPaid[id] = true
	}
	m.seen.setBalance++
	var (
		bpos, bneg, apos, aneg uint64
		err                    error
	)
	m.pool.BalanceOperation(id, freeID, func(op clientpool.AtomicBalanceOperator) {
		bpos, bneg = op.GetBalance()
		err = op.SetBalance(pos, neg)
		apos, aneg = op.GetBalance()
	})
	m.logf("SetBalance(%x, %q, %d, %d) from (%d, %d) = %v", id[28:], freeID, pos, neg, bpos, bneg, err)
	wantErr := pos > math.MaxInt64 || neg > math.MaxInt64 || (freeID == "" && neg != 0)
	switch {
	case wantErr && err == nil:
		m.failf("SetBalance(%d, %d) with free ID %q succeeded; want an error", pos, neg, freeID)
	case !wantErr && err != nil:
		m.failf("SetBalance(%d, %d) with free ID %q: %v", pos, neg, freeID, err)
	case err != nil:
		m.seen.balanceErrors++
		if apos != bpos || aneg != bneg {
			m.failf("failed SetBalance changed the balance from (%d, %d) to (%d, %d)", bpos, bneg, apos, aneg)
		}
	default:
		if !balanceClose(apos, pos) || !balanceClose(aneg, neg) {
			m.failf("SetBalance(%d, %d) reads back (%d, %d)", pos, neg, apos, aneg)
		}
	}
}

// queryTarget picks who asks a query: a live peer or a random unconnected ID.
func (m *poolModel) queryTarget(c chooser) (enode.ID, string, *testPeer) {
	if p := m.randomLive(c); p != nil && c.intn(2) == 0 {
		return p.node.ID(), p.freeID, p
	}
	return m.randomIdentity(c)
}

func (m *poolModel) opCapQuery(c chooser) {
	id, freeID, _ := m.queryTarget(c)
	n := 1 + c.intn(params.MaxCapQueryAmounts)
	amounts := make([]int64, n)
	for i := range amounts {
		amounts[i] = int64(c.uint64() >> (1 + uint(c.intn(63))))
	}
	if c.intn(4) == 0 {
		amounts[0] = 0
	}
	sort.Slice(amounts, func(i, j int) bool { return amounts[i] < amounts[j] })
	bias := uint64(c.intn(600))
	if c.intn(8) == 0 {
		bias = math.MaxUint64 // clamped to a day, no overflow
	}
	reply := capQuery(m.pool, id, freeID, bias, amounts...)
	m.logf("cq(%x, bias %d, %v) = %v", id[28:], bias, amounts, reply)
	if len(reply) != n {
		m.failf("cq with %d amounts answered %d capacities", n, len(reply))
	}
	m.seen.cqAnswered++
	if reply[n-1] != 0 {
		m.seen.cqNonZero++
	}
	_, maxCap := m.pool.Limits()
	pos, _ := getBalance(m.pool, id, freeID)
	for i, r := range reply {
		if r != 0 && (r < m.minCap || r > maxCap) {
			m.failf("cq answer %d for %d tokens is outside {0} and [minCap %d, maxCap %d]", r, amounts[i], m.minCap, maxCap)
		}
		if i > 0 && r < reply[i-1] {
			m.failf("cq answers fall with more tokens: %v for %v", reply, amounts)
		}
		if pos == 0 && amounts[i] == 0 && r > m.minCap {
			m.failf("free client answered %d, more than minCap", r)
		}
	}
}

func (m *poolModel) opCorruptQuery(c chooser) {
	id, freeID, _ := m.queryTarget(c)
	var data []byte
	switch c.intn(5) {
	case 0: // random bytes
		data = c.bytes(c.intn(64))
	case 1: // a valid query with one byte flipped
		data = encodeCapQuery(uint64(c.intn(300)), 0, 1e9, 1e12)
		data[c.intn(len(data))] ^= byte(1 + c.intn(255))
	case 2: // truncated
		data = encodeCapQuery(uint64(c.intn(300)), 0, 1e9, 1e12)
		data = data[:c.intn(len(data))]
	case 3: // too many amounts
		amounts := make([]int64, params.MaxCapQueryAmounts+1+c.intn(4))
		data = encodeCapQuery(0, amounts...)
	case 4: // odd IntOrInf types and infinities
		req := vflux.CapacityQueryReq{Bias: c.uint64(), AddTokens: make([]vflux.IntOrInf, 1+c.intn(4))}
		for i := range req.AddTokens {
			req.AddTokens[i].Type = uint8(c.intn(6))
			req.AddTokens[i].Value.SetBytes(c.bytes(c.intn(40)))
		}
		data, _ = rlp.EncodeToBytes(&req)
	}
	m.logf("corrupt cq(%x, %x)", id[28:], data)
	reply := m.pool.Handle(id, freeID, vflux.CapacityQueryName, data)
	var dec vflux.CapacityQueryReply
	if reply != nil && rlp.DecodeBytes(reply, &dec) != nil {
		m.failf("cq answered undecodable bytes %x", reply)
	}
	if len(reply) > 0 {
		m.seen.corruptAnswered++
	}
}

func (m *poolModel) opBalanceAndInfoQuery(c chooser) {
	id, freeID, p := m.queryTarget(c)
	var bal vflux.BalanceReply
	if enc := m.pool.Handle(id, freeID, vflux.BalanceQueryName, nil); rlp.DecodeBytes(enc, &bal) != nil {
		m.failf("\"bal\" reply %x does not decode", enc)
	}
	pos, neg := getBalance(m.pool, id, freeID)
	if p != nil && p.Balance() != nil {
		pos, neg = p.Balance().GetBalance()
	}
	m.logf("bal(%x, %q) = %+v", id[28:], freeID, bal)
	if bal.Pos != pos || bal.Neg != neg {
		m.failf("\"bal\" answered %+v, the balance is (%d, %d)", bal, pos, neg)
	}
	var info vflux.ServerInfoReply
	if enc := m.pool.Handle(id, freeID, vflux.ServerInfoName, []byte{0xc0}); rlp.DecodeBytes(enc, &info) != nil {
		m.failf("\"info\" reply %x does not decode", enc)
	}
	maxCount, maxCap := m.pool.Limits()
	count, capacity := m.pool.Active()
	posTC, negTC := m.pool.GetExpirationTCs()
	if info.MinCap != m.minCap || info.MaxCount != maxCount || info.MaxCap != maxCap ||
		info.ActiveCount != count || info.ActiveCap != capacity || info.PosExpirationTC != posTC ||
		info.NegExpirationTC != negTC || info.ConnectedBias != uint64(m.bias/time.Second) {
		m.failf("\"info\" answered %+v; pool has minCap %d, limits (%d, %d), active (%d, %d), TCs (%d, %d), bias %v",
			info, m.minCap, maxCount, maxCap, count, capacity, posTC, negTC, m.bias)
	}
}

func (m *poolModel) opRequestServed(c chooser) {
	p := m.randomLive(c)
	if p == nil || p.Balance() == nil {
		return
	}
	b := p.Balance()
	cost := uint64(c.intn(1000000))
	before, _ := b.GetBalance()
	got := b.RequestServed(cost)
	after, _ := b.GetBalance()
	m.logf("RequestServed(%x, %d) from %d = %d", p.node.ID().Bytes()[28:], cost, before, got)
	if (got > before && !balanceClose(got, before)) || !balanceClose(after, got) {
		m.failf("RequestServed(%d) on %d returned %d, reads %d", cost, before, got, after)
	}
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
			if since := time.Duration(now - m.inSince[p]); !m.everPaid[p.node.ID()] && since > m.allow[p] {
				m.failf("free client %x inactive for %v, past its allowance %v, and not disconnected",
					p.node.ID().Bytes()[28:], since, m.allow[p])
			}
			continue
		}
		if c < m.minCap {
			m.failf("active client %x has capacity %d below minCap %d", p.node.ID().Bytes()[28:], c, m.minCap)
		}
		told += c
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
		{"with minCap 1 the invariants hold after every step", 1, 1, 5000},
		{"with minCap 100 the invariants hold after every step", 2, 100, 5000},
		{"with minCap 1000 the invariants hold after every step", 3, 1000, 5000},
		{"with minCap 10 and another seed the invariants hold after every step", 4, 10, 5000},
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

// Regression test for a bug the property test found (seed 4): a peer callback
// that calls back into the pool (Unregister from Disconnect) had its nested
// callbacks delivered ahead of the rest of the outer batch, so a client the
// nested call re-activated was then told the outer batch's stale capacity 0:
// the peer believed it was inactive while the pool counted it active.
func TestReentrantUnregisterLeavesNoStaleCapacity(t *testing.T) {
	pool, _ := newSimPool(t, memorydb.New(), 10, 0)
	pool.SetLimits(10, 120)
	var vlog violationLog
	peer := func(i int, allowance time.Duration) *testPeer {
		p := newTestPeer(testID(i), fmt.Sprintf("10.0.0.%d", i), allowance, nil)
		p.log = &vlog
		return p
	}
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

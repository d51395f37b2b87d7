package clientpool

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// ClientPool decides which connected clients are active and with what
// capacity (SPEC 3). All methods are safe for concurrent use; peer callbacks
// run after the pool lock is released (see doc.go).
type ClientPool struct {
	clock  mclock.Clock
	synced func() bool
	minCap uint64
	st     store

	subsMu  sync.Mutex // guards subs; never taken together with mu
	subs    []*eventSub
	dropped atomic.Uint64
	quit    chan struct{}
	saved   savedSettings // the settings saved on disk (settings.go); its lock is taken before mu

	cqCounts capQueryCounts // answered capacity queries (clients_api.go)

	mu           sync.Mutex // guards everything below
	started      bool
	stopped      bool
	loadErr      error // why NewClientPool started the pool stopped (Err)
	bias         time.Duration
	maxCount     uint64
	maxCap       uint64
	maxInactive  int
	maxPerFree   int            // most connected clients per free-client ID, 0 = unlimited
	refusedFree  uint64         // Register refusals by maxPerFree since the last log line
	refusedLog   mclock.AbsTime // when the last of those was logged
	refusedOnce  bool           // refusedLog is set
	defPos       PriceFactors
	defNeg       PriceFactors
	posExp       expClock
	negExp       expClock
	clients      map[enode.ID]*client
	negs         map[string]*negBalance // shared negative balances of connected clients
	active       clientHeap             // active clients, lowest priority bound first
	slots        clientHeap             // active clients, lowest bound of the priority at minCap first
	inactiveBest clientHeap             // inactive clients, best first
	inactiveLow  clientHeap             // inactive clients, worst first
	activeCount  uint64
	activeCap    uint64
	seq          uint64
	total        ExpiredValue // sum of all positive balances, as settled
	spendRate    float64      // sum of active priority clients' spending rates (tokens/ns)
	spendRateAt  float64      // sum of those rates times the clients' lastSettle
	periodicGen  uint64
	periodic     mclock.Timer
	lastSweep    mclock.AbsTime
	lastOffsets  mclock.AbsTime
	planGen      uint64
	frontier     planHeap // the planner's frontier, kept for its storage
	curve        *capacityCurve
	curveMoved   uint64 // capacity moved since the curve was built
	curveChanged bool   // anything changed since the curve was built
	snapGen      uint64
	drifts       [2]keyDrift // the common drift of free and of priority clients' keys (drift.go)
	activation   clientTimer // fires when a waiting client may out-rank an active one
	planFloor    int64       // a failed plan's lowest rank of what was left (MaxInt64: none)
	refreshed    []*client   // clients the plan under way found loose, re-keyed when it ends (tightenKeys)
	rekeys       uint64      // active re-keys so far (tests count them)
	negRefreshes uint64      // shared-balance ceiling refreshes so far (tests count them)
	unwritten    []*client   // inactive clients with balances changed since persistAll, for the next one
	pending      []callbacks // decided by persistAll, run by its caller
	delivered    sync.Cond   // on mu: a capacity delivery to some client ended (see deliverCapacity)
}

// NewClientPool creates a pool over the balance database db (memorydb when
// nil). It has limits (0, 0), no expiration and zero default price factors
// until SetLimits, SetExpirationTCs and SetDefaultFactors are called. synced
// reports whether the node can serve; the capacity query answers 0 while it
// is false (nil means always synced).
func NewClientPool(db ethdb.KeyValueStore, minCap uint64, connectedBias time.Duration, clock mclock.Clock, synced func() bool) *ClientPool {
	if db == nil {
		db = memorydb.New()
	}
	if clock == nil {
		clock = mclock.System{}
	}
	if minCap == 0 {
		minCap = 1
	}
	if connectedBias < 0 {
		connectedBias = 0
	}
	p := &ClientPool{
		clock:   clock,
		synced:  synced,
		minCap:  minCap,
		st:      store{db: db},
		quit:    make(chan struct{}),
		bias:    connectedBias,
		clients: make(map[enode.ID]*client),
		negs:    make(map[string]*negBalance),
	}
	p.delivered.L = &p.mu
	p.active = newClientHeap(lowerActive, func(c *client) *int { return &c.activeIx })
	p.slots = newClientHeap(lowerSlot, func(c *client) *int { return &c.slotIx })
	p.inactiveBest = newClientHeap(betterInactive, func(c *client) *int { return &c.bestIx })
	p.inactiveLow = newClientHeap(func(a, b *client) bool { return betterInactive(b, a) }, func(c *client) *int { return &c.worstIx })
	now := clock.Now()
	p.drifts[freeKeys] = keyDrift{exp: &p.negExp, rate: keySlack, since: now}
	p.drifts[paidKeys] = keyDrift{exp: &p.posExp, rate: keySlack, since: now}
	posL, negL, err := p.st.loadOffsets()
	if err != nil {
		// Nothing can be decided without the offsets the stored balances are
		// measured against: the pool starts stopped and says why (Err).
		log.Error("Balance database unreadable, the client pool refuses all work", "err", err)
		p.loadErr = err
		p.stopped = true
		close(p.quit)
		return p
	}
	p.posExp.restore(now, posL)
	p.negExp.restore(now, negL)
	p.drifts[freeKeys].ref, p.drifts[paidKeys].ref = negL, posL
	p.lastSweep, p.lastOffsets = now, now
	var corrupt int
	var firstCorrupt []byte
	p.st.iterate(posKeyPrefix(), nil, func(suffix []byte, v ExpiredValue, bad bool) bool {
		if bad {
			if corrupt++; corrupt == 1 {
				firstCorrupt = suffix
			}
			return true
		}
		p.total.AddExp(v)
		return true
	})
	if corrupt > 0 {
		// SPEC 2.5: reported and read as zero; the node starts anyway. Once
		// here at start, so an operator sees it without a client connecting.
		log.Error("Corrupt positive balances in database, reading them as zero", "count", corrupt, "first", fmt.Sprintf("%x", firstCorrupt))
	}
	return p
}

// Err returns why the pool refuses all work since NewClientPool (its
// database could not be read), or nil. Such a pool acts as a stopped one:
// Register returns nil and nothing is written.
func (p *ClientPool) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loadErr
}

// Start starts the periodic persistence of active clients' spending and the
// hourly sweep of small balances.
func (p *ClientPool) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.stopped {
		return
	}
	p.started = true
	p.armPeriodic()
}

// Stop persists every balance and the expiration offsets and stops all
// timers; everything is on disk when it returns (a failed write is logged).
// After Stop, Register returns nil and the other methods do nothing.
func (p *ClientPool) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	now := p.clock.Now()
	p.persistAll(now, true)
	p.stopped = true
	if p.periodic != nil {
		p.periodic.Stop()
	}
	p.activation.stop()
	for _, c := range p.clients {
		c.timer.stop()
		c.allowTimer.stop()
		c.decayTimer.stop()
	}
	p.mu.Unlock()
	if err := p.st.close(); err != nil { // on disk when Stop returns
		logWriteError(err)
	}
	close(p.quit)
}

// Register adds a connected client (SPEC 3.2). It returns after the first
// capacity decision: the peer has already got UpdateCapacity(minCap) or it is
// inactive (and, with a zero allowance and no priority, told to Disconnect).
// It returns nil after Stop or when the node ID is already registered, and
// when the peer's free-client ID already has SetMaxPerFreeID clients: that
// peer is also told to Disconnect before Register returns (the transport
// refuses it with DiscTooManyPeers).
func (p *ClientPool) Register(peer Peer) ConnectedBalance {
	node := peer.Node()
	if node == nil {
		return nil
	}
	freeID, allowance := peer.FreeClientID(), peer.InactiveAllowance()
	// The stored balances are read before the lock and checked under it
	// (store.use), so the pool is not held up by the database reads.
	storedPos := p.st.readAhead(posKey(node.ID()))
	var storedNeg readAhead
	if freeID != "" {
		storedNeg = p.st.readAhead(negKey(freeID))
	}
	var acts callbacks
	p.mu.Lock()
	if p.stopped || p.clients[node.ID()] != nil {
		p.mu.Unlock()
		return nil
	}
	now := p.clock.Now()
	if nb := p.negs[freeID]; nb != nil && p.maxPerFree > 0 && len(nb.clients) >= p.maxPerFree {
		p.logRefusedFree(freeID, len(nb.clients), now)
		acts.add(Event{Type: EventDisconnected, ID: node.ID(), Time: now, Reason: ReasonTooManyFromAddress})
		p.mu.Unlock()
		acts.run(p)
		peer.Disconnect() // refused by a limit, as an evicted client is
		return nil
	}
	pos, neg, err := p.storedBalances(freeID, storedPos, storedNeg)
	if err != nil { // never decide (and later write) a balance that could not be read
		p.mu.Unlock()
		log.Error("Refusing client: its stored balance cannot be read", "id", node.ID(), "err", err)
		return nil
	}
	p.seq++
	c := &client{
		pool: p, peer: peer, node: node, id: node.ID(), freeID: freeID, allowance: allowance,
		seq: p.seq, registered: true, posF: p.defPos, negF: p.defNeg,
		activeIx: -1, slotIx: -1, bestIx: -1, worstIx: -1, lastSettle: now,
	}
	c.pos = pos
	c.inTotal = c.pos
	if c.pos.Value(p.posExp.at(now)) == 0 && !c.pos.IsZero() {
		// decayed away while stored: it never gave priority on this connection
		c.pos, c.posDirty = ExpiredValue{}, true
		p.updateTotal(c)
	}
	c.neg = p.acquireNeg(c, neg, now)
	if len(c.neg.clients) == 2 && c.neg.shared() {
		p.refreshNeg(c.neg, now) // the first member's key was exact: now against the ceiling
	}
	p.clients[c.id] = c
	c.since = now
	acts.event(EventConnected, c, now, "")
	c.setInactiveKey()
	p.inactiveBest.add(c)
	p.inactiveLow.add(c)
	p.tryActivate(now, &acts)
	if !c.active && !c.disconnected {
		p.startAllowance(c, &acts)
	}
	p.finish(now, &acts)
	p.mu.Unlock()
	acts.run(p)
	return c
}

// acquireNeg returns the shared negative balance of c's free ID, taking the
// stored value (see storedBalances) when c is the first connected client with
// that ID.
func (p *ClientPool) acquireNeg(c *client, stored ExpiredValue, now mclock.AbsTime) *negBalance {
	if c.freeID == "" {
		return &negBalance{clients: []*client{c}, settledAt: now}
	}
	nb := p.negs[c.freeID]
	if nb == nil {
		nb = &negBalance{freeID: c.freeID, value: stored, settledAt: now, since: now}
		p.negs[c.freeID] = nb
	}
	nb.clients = append(nb.clients, c)
	return nb
}

// releaseNeg drops c's reference to its shared negative balance.
func (p *ClientPool) releaseNeg(c *client, now mclock.AbsTime) {
	nb := c.neg
	p.settleNeg(nb, now)
	nb.rate -= c.negRate // 0 already: it left the active set
	c.negRate = 0
	for i, s := range nb.clients {
		if s == c {
			nb.clients = append(nb.clients[:i], nb.clients[i+1:]...)
			break
		}
	}
	if len(nb.clients) == 0 && nb.freeID != "" && p.negs[nb.freeID] == nb {
		delete(p.negs, nb.freeID)
	}
}

// Unregister removes a client: its balances are charged and queued for the
// database writer (on disk shortly after, and at the latest when Stop
// returns), its capacity freed and waiting clients activated. Unregistering a
// peer that is not registered (or a different peer with a registered ID) does
// nothing.
func (p *ClientPool) Unregister(peer Peer) {
	node := peer.Node()
	if node == nil {
		return
	}
	var acts callbacks
	p.mu.Lock()
	c := p.clients[node.ID()]
	if c == nil || c.peer != peer {
		p.mu.Unlock()
		return
	}
	now := p.clock.Now()
	if !p.stopped && c.settle(now) {
		acts.event(EventBalanceExhausted, c, now, "")
	}
	wasDisconnected := c.disconnected
	p.leaveSets(c, now, &acts, false, ReasonPeerLeft)
	c.registered = false
	delete(p.clients, c.id)
	if !p.stopped {
		b := p.st.newBatch()
		p.writeClient(b, c, now, true)
		b.queue(p.posExp.at(now), p.negExp.at(now)) // written after the lock is released
	}
	p.releaseNeg(c, now)
	if !wasDisconnected {
		acts.event(EventDisconnected, c, now, ReasonPeerLeft)
	}
	if !p.stopped {
		p.tryActivate(now, &acts)
		p.finish(now, &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// SetConnectedBias sets how long an incumbent is protected from newcomers.
func (p *ClientPool) SetConnectedBias(bias time.Duration) {
	if bias < 0 {
		bias = 0
	}
	var acts callbacks
	p.mu.Lock()
	p.bias = bias
	p.curve = nil // the curve's newcomer answers depend on it
	if !p.stopped {
		now := p.clock.Now()
		p.tryActivate(now, &acts)
		p.finish(now, &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// SetLimits sets the most active clients and the most total active capacity.
// Lowering enforces the limits now; raising activates waiting clients now.
func (p *ClientPool) SetLimits(maxCount, maxCap uint64) {
	var acts callbacks
	p.mu.Lock()
	p.maxCount, p.maxCap = maxCount, maxCap
	p.curve = nil
	if !p.stopped {
		now := p.clock.Now()
		if victims, ok := p.plan(now, nil, 0, 0); ok {
			p.applyPlan(victims, now, &acts, ReasonLimitsLowered)
		}
		p.tryActivate(now, &acts)
		p.finish(now, &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// Limits returns the limits set by SetLimits.
func (p *ClientPool) Limits() (maxCount, maxCap uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxCount, p.maxCap
}

// SetMaxInactive bounds the inactive set (0 = unlimited, the default): when it
// is over n, the lowest-priority inactive client is disconnected.
func (p *ClientPool) SetMaxInactive(n int) {
	if n < 0 {
		n = 0
	}
	var acts callbacks
	p.mu.Lock()
	p.maxInactive = n
	if !p.stopped {
		p.finish(p.clock.Now(), &acts)
	}
	p.mu.Unlock()
	acts.run(p)
}

// SetMaxPerFreeID bounds how many clients with one free-client ID (one IPv4
// address, one IPv6 /64; see vflux.FreeClientID) may be registered at once
// (0 = unlimited, the default). Register refuses a client beyond the bound:
// it tells the peer to Disconnect, returns nil and logs why (at most one line
// per refusedLogInterval). Clients already registered stay.
func (p *ClientPool) SetMaxPerFreeID(n int) {
	if n < 0 {
		n = 0
	}
	p.mu.Lock()
	p.maxPerFree = n
	p.mu.Unlock()
}

// MaxPerFreeID returns the bound set by SetMaxPerFreeID (0 = unlimited).
func (p *ClientPool) MaxPerFreeID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxPerFree
}

// refusedLogInterval is how often refusals by the per-free-ID bound are
// logged: a flood from one address is one line every few seconds, with the
// count of refusals since the last one.
const refusedLogInterval = 5 * time.Second

// logRefusedFree logs a refusal by the per-free-ID bound (pool lock held).
func (p *ClientPool) logRefusedFree(freeID string, connected int, now mclock.AbsTime) {
	p.refusedFree++
	if p.refusedOnce && now-p.refusedLog < mclock.AbsTime(refusedLogInterval) {
		return
	}
	log.Warn("Refused client: too many connected clients with its free-client ID (address)",
		"freeID", freeID, "connected", connected, "limit", p.maxPerFree, "refused", p.refusedFree)
	p.refusedFree, p.refusedLog, p.refusedOnce = 0, now, true
}

// Active returns the number and total capacity of active clients.
func (p *ClientPool) Active() (count, capacity uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.activeCount, p.activeCap
}

// Inactive returns the number of connected clients waiting without capacity.
func (p *ClientPool) Inactive() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inactiveBest.Len()
}

// MinCap returns the capacity every active client gets at least.
func (p *ClientPool) MinCap() uint64 { return p.minCap }

// ConnectedBias returns the current connected bias.
func (p *ClientPool) ConnectedBias() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bias
}

// SetDefaultFactors sets the price factors clients registered from now on
// start with. Negative or non-finite factors are ignored.
func (p *ClientPool) SetDefaultFactors(pos, neg PriceFactors) {
	if !pos.valid() || !neg.valid() {
		return
	}
	p.mu.Lock()
	p.defPos, p.defNeg = pos, neg
	p.setDriftRates(p.clock.Now())
	p.mu.Unlock()
}

// DefaultFactors returns the default price factors.
func (p *ClientPool) DefaultFactors() (pos, neg PriceFactors) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.defPos, p.defNeg
}

// SetExpirationTCs sets the time constants (e-folding times in seconds, 0 =
// never) of the positive and negative balances, from now on. Active clients
// are re-keyed: their priority bounds and threshold timers depend on decay;
// waiting priority clients re-arm their decay timers.
func (p *ClientPool) SetExpirationTCs(pos, neg uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	p.settleDrifts(now) // the drifts grew with the old time constants until now
	p.posExp.setTC(now, pos)
	p.negExp.setTC(now, neg)
	if !p.stopped {
		for _, c := range p.clients {
			if c.active {
				p.rekey(c, now)
			} else if !c.disconnected && c.hasPriority() {
				p.armDecay(c) // the moment its balance decays away moved
			}
		}
		p.curveChanged = true
	}
}

// GetExpirationTCs returns the time constants set by SetExpirationTCs.
func (p *ClientPool) GetExpirationTCs() (pos, neg uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.posExp.tc, p.negExp.tc
}

// TotalTokenAmount returns the sum of all positive balances, stored and held,
// maintained incrementally.
func (p *ClientPool) TotalTokenAmount() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	v := float64(p.total.Value(p.posExp.at(now)))
	v -= p.spendRate*float64(now) - p.spendRateAt // spent but not yet settled
	return addSat(0, v)
}

// updateSpend refreshes c's share of the pool's unsettled spending rate, so
// TotalTokenAmount includes spending since the last settlement without a scan.
func (p *ClientPool) updateSpend(c *client) {
	p.spendRate -= c.spendRate
	p.spendRateAt -= c.spendRate * float64(c.lastSettle)
	c.spendRate = 0
	if c.active && !c.pos.IsZero() && c.registered {
		c.spendRate = c.posF.timePrice(c.capacity, 0)
	}
	p.spendRate += c.spendRate
	p.spendRateAt += c.spendRate * float64(c.lastSettle)
	if p.spendRate < 1e-12 && p.spendRate > -1e-12 {
		p.spendRate, p.spendRateAt = 0, 0 // no drift once nobody spends
	}
}

// updateTotal moves c's share of the total token amount to its current value.
func (p *ClientPool) updateTotal(c *client) {
	p.total.SubExp(c.inTotal)
	c.inTotal = c.pos
	p.total.AddExp(c.pos)
}

// finish runs the checks due at the end of every state change: the inactive
// set bound.
func (p *ClientPool) finish(now mclock.AbsTime, acts *callbacks) {
	for p.maxInactive > 0 && p.inactiveLow.Len() > p.maxInactive {
		p.disconnect(p.inactiveLow.top(), now, acts, ReasonWaitingFull)
	}
}

// ensure the interface is implemented.
var _ ConnectedBalance = (*client)(nil)

// maxDuration returns the larger duration.
func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

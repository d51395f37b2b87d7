package protocol

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/leveldb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// realNode is a serving node wired as the node package does: the client pool,
// the vflux request server with the pool as service "vfx", and the Handler on a
// p2p.Server on 127.0.0.1.
type realNode struct {
	*vfxServer
	pool *clientpool.ClientPool
	vs   *vflux.Server
}

type realNodeConfig struct {
	db         ethdb.KeyValueStore // nil: memorydb
	poolClock  mclock.Clock        // nil: mclock.System
	meterClock mclock.Clock        // nil: mclock.System
	maxCount   uint64
	maxCap     uint64
	allowance  time.Duration
	maxPeers   int // p2p slots; 0: maxCount + maxInactive (= maxCount), as SPEC 6 item 5
	// handshakeTimeout of the Handler; 0: the default.
	handshakeTimeout time.Duration
	pos, neg         clientpool.PriceFactors
}

func startRealNode(t testing.TB, cfg realNodeConfig) *realNode {
	t.Helper()
	if cfg.db == nil {
		cfg.db = memorydb.New()
	}
	if cfg.poolClock == nil {
		cfg.poolClock = mclock.System{}
	}
	if cfg.maxPeers == 0 {
		cfg.maxPeers = int(2 * cfg.maxCount)
	}
	pool := clientpool.NewClientPool(cfg.db, testMinCap, time.Minute, cfg.poolClock, func() bool { return true })
	pool.Start()
	pool.SetLimits(cfg.maxCount, cfg.maxCap)
	pool.SetDefaultFactors(cfg.pos, cfg.neg)
	return startRealNodeWith(t, pool, Config{
		MinCap: testMinCap, InactiveAllowance: cfg.allowance, Clock: cfg.meterClock,
		HandshakeTimeout: cfg.handshakeTimeout,
	}, cfg.maxPeers)
}

// startRealNodeWith serves a started pool through a vflux.Server and a Handler
// configured by hcfg (Pool and Requests are filled in). The pool is stopped at
// cleanup.
func startRealNodeWith(t testing.TB, pool *clientpool.ClientPool, hcfg Config, maxPeers ...int) *realNode {
	t.Helper()
	vs := vflux.NewServer(vflux.ServerConfig{})
	if err := vs.Register(pool, params.ServiceName, "client pool"); err != nil {
		t.Fatal(err)
	}
	hcfg.Pool, hcfg.Requests = pool, vs
	slots := 20
	if len(maxPeers) > 0 {
		slots = maxPeers[0]
	}
	s := startVfxServer(t, hcfg, slots)
	// SPEC 6 stop order: request server, peer loops, pool.
	t.Cleanup(func() { vs.Stop(); s.h.Stop(); pool.Stop() })
	return &realNode{vfxServer: s, pool: pool, vs: vs}
}

// defaultFactors are SPEC 9's defaults in internal units (per ns).
var defaultFactors = clientpool.PriceFactors{
	TimeFactor:     params.DefaultTimeFactor / 1e9,
	CapacityFactor: params.DefaultCapacityFactor / 1e9,
	RequestFactor:  params.DefaultRequestFactor,
}

func addBalance(t testing.TB, pool *clientpool.ClientPool, id enode.ID, amount int64) {
	t.Helper()
	var err error
	pool.BalanceOperation(id, id.String(), func(op clientpool.AtomicBalanceOperator) {
		_, _, err = op.AddBalance(amount)
	})
	if err != nil {
		t.Fatalf("AddBalance: %v", err)
	}
}

func TestEvictionStoryAPaidNewcomerEvictsAFreeClientWhoseDebtIsOnDisk(t *testing.T) {
	db, err := leveldb.New(t.TempDir(), 16, 16, "", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := new(mclock.Simulated)
	// Free time costs 1 token per ns on the negative side, so a few seconds of
	// service leave a debt far above the 1e6 storage threshold.
	neg := clientpool.PriceFactors{TimeFactor: 1}
	n := startRealNode(t, realNodeConfig{db: db, poolClock: clock, maxCount: 2, maxCap: 2 * testMinCap,
		allowance: 0, maxPeers: 4, pos: defaultFactors, neg: neg})

	free1, free2, paid := startVfxClient(t), startVfxClient(t), startVfxClient(t)
	f1, f2 := free1.dial(t, n.vfxServer), free2.dial(t, n.vfxServer)
	for _, cl := range []*Client{f1, f2} {
		if u := waitUpdate(t, cl); u.Capacity != testMinCap {
			t.Fatalf("free client got %+v, want minCap", u)
		}
	}
	clock.Run(5 * time.Second) // both serve 5 s and accrue debt

	addBalance(t, n.pool, paid.id(), 1e15)
	p := paid.dial(t, n.vfxServer)
	if u := waitUpdate(t, p); u.Capacity < testMinCap {
		t.Fatalf("paid client got %+v, want at least minCap", u)
	}

	// Exactly one free client is evicted, with DiscTooManyPeers.
	var evicted *vfxClient
	var evictedCl, kept *Client
	select {
	case <-f1.Done():
		evicted, evictedCl, kept = free1, f1, f2
	case <-f2.Done():
		evicted, evictedCl, kept = free2, f2, f1
	case <-time.After(netTimeout):
		t.Fatal("no free client was evicted")
	}
	if r := evictedCl.DisconnectReason(); r != p2p.DiscTooManyPeers {
		t.Fatalf("evicted client saw %v, want %v", r, p2p.DiscTooManyPeers)
	}
	n.watcher.ExpectDrop(evicted.id(), p2p.DiscTooManyPeers, netTimeout)
	select {
	case <-kept.Done():
		t.Fatalf("both free clients dropped (%v)", kept.DisconnectReason())
	default:
	}
	if count, capacity := n.pool.Active(); count != 2 || capacity != 2*testMinCap || p.Capacity() < testMinCap {
		t.Fatalf("active %d/%d, paid capacity %d", count, capacity, p.Capacity())
	}

	// Stop the node; a fresh pool on the same database reads the evicted
	// client's debt back from disk.
	n.vs.Stop()
	n.h.Stop()
	n.pool.Stop()
	reopened := clientpool.NewClientPool(db, testMinCap, time.Minute, clock, func() bool { return true })
	reopened.Start()
	defer reopened.Stop()
	var debt uint64
	reopened.BalanceOperation(evicted.id(), evicted.id().String(), func(op clientpool.AtomicBalanceOperator) {
		_, debt = op.GetBalance()
	})
	if debt <= params.BalanceDropThreshold {
		t.Fatalf("evicted client's stored negative balance is %d, want above %d", debt, params.BalanceDropThreshold)
	}
}

func TestCapacityRequestsOfAPaidAndAFreeClient(t *testing.T) {
	n := startRealNode(t, realNodeConfig{poolClock: new(mclock.Simulated), maxCount: 10, maxCap: 20 * testMinCap,
		allowance: time.Minute, pos: defaultFactors, neg: defaultFactors})
	paid, free := startVfxClient(t), startVfxClient(t)
	addBalance(t, n.pool, paid.id(), 1e15)
	p, f := paid.dial(t, n.vfxServer), free.dial(t, n.vfxServer)
	waitUpdate(t, p)
	waitUpdate(t, f)

	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	reply, err := p.RequestCapacity(ctx, 5*testMinCap, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Code != CapOK || reply.Capacity != 5*testMinCap {
		t.Fatalf("paid client's reply %+v, want OK with %d", reply, 5*testMinCap)
	}
	// The update came first and says it was requested.
	if u := waitUpdate(t, p); u != (CapacityUpdate{Capacity: 5 * testMinCap, Requested: true}) {
		t.Fatalf("update %+v", u)
	}
	if p.Capacity() != 5*testMinCap {
		t.Fatalf("Capacity() %d after the reply", p.Capacity())
	}

	reply, err = f.RequestCapacity(ctx, 5*testMinCap, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Code != CapNoPriority || reply.Capacity != testMinCap || reply.Msg == "" {
		t.Fatalf("free client's reply %+v, want code %d (no priority) at minCap with a message", reply, CapNoPriority)
	}
	select {
	case u := <-f.Updates():
		t.Fatalf("refused client got update %+v", u)
	default:
	}
}

func TestCapacityQueryOverRLPxEqualsServeEncoded(t *testing.T) {
	noRequestCost := defaultFactors
	noRequestCost.RequestFactor = 0 // the RLPx request must not change the answer of the direct one
	n := startRealNode(t, realNodeConfig{poolClock: new(mclock.Simulated), maxCount: 2, maxCap: 4 * testMinCap,
		allowance: time.Minute, pos: noRequestCost, neg: noRequestCost})
	// Fill the pool so the answers depend on the tokens.
	for i := 0; i < 2; i++ {
		waitUpdate(t, startVfxClient(t).dial(t, n.vfxServer))
	}
	c := startVfxClient(t)
	cl := c.dial(t, n.vfxServer)

	var reqs vflux.Requests
	amounts := make([]vflux.IntOrInf, 4)
	for i, v := range []int64{0, 1e9, 1e12, 1e15} {
		amounts[i].SetInt64(v)
	}
	if _, err := reqs.Add(params.ServiceName, vflux.CapacityQueryName, &vflux.CapacityQueryReq{Bias: 60, AddTokens: amounts}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	overRLPx, err := cl.Vflux(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	var got vflux.CapacityQueryReply
	if err := overRLPx.Get(0, &got); err != nil {
		t.Fatalf("cq over RLPx: %v", err)
	}
	enc, _ := rlp.EncodeToBytes(reqs)
	var direct vflux.Replies
	if err := rlp.DecodeBytes(n.vs.ServeEncoded(c.id(), net.IPv4(127, 0, 0, 1), enc), &direct); err != nil {
		t.Fatal(err)
	}
	var want vflux.CapacityQueryReply
	if err := direct.Get(0, &want); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || !slices.Equal(got, want) {
		t.Fatalf("cq over RLPx %v, through ServeEncoded %v", got, want)
	}
	if got[len(got)-1] == 0 {
		t.Fatalf("a client adding 1e15 tokens would not be admitted: %v", got)
	}
}

// cqBatch is a small "cq" request as a client would send it.
func cqBatch(t testing.TB) vflux.Requests {
	var reqs vflux.Requests
	if _, err := reqs.Add(params.ServiceName, vflux.CapacityQueryName, &vflux.CapacityQueryReq{Bias: 60, AddTokens: make([]vflux.IntOrInf, 2)}); err != nil {
		t.Fatal(err)
	}
	return reqs
}

func TestFlowControlAFlooderGetsBusyThenIsDropped(t *testing.T) {
	meterClock := new(mclock.Simulated) // stands still: the buffer never recharges
	n := startRealNode(t, realNodeConfig{poolClock: new(mclock.Simulated), meterClock: meterClock, maxCount: 10, maxCap: 10 * testMinCap,
		allowance: time.Minute, pos: defaultFactors, neg: defaultFactors})
	c := startVfxClient(t)
	cl := c.dial(t, n.vfxServer)
	waitUpdate(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	reqs := cqBatch(t)
	served, busy := 0, 0
	var firstBusy *BusyError
	for {
		_, err := cl.Vflux(ctx, reqs)
		var be *BusyError
		switch {
		case err == nil:
			served++
		case errors.As(err, &be):
			if firstBusy == nil {
				firstBusy = be
			}
			busy++
		case errors.Is(err, ErrDisconnected):
			if busy != params.MaxBusyStrikes || served == 0 {
				t.Fatalf("dropped after %d served, %d busy; want some served and %d busy", served, busy, params.MaxBusyStrikes)
			}
			if r := waitDone(t, cl); r != p2p.DiscUselessPeer {
				t.Fatalf("flooder dropped with %v, want %v", r, p2p.DiscUselessPeer)
			}
			if firstBusy.Wait <= 0 {
				t.Fatalf("Busy without a wait: %v", firstBusy)
			}
			n.watcher.ExpectDrop(c.id(), p2p.DiscUselessPeer, netTimeout)
			if count, _ := n.pool.Active(); count != 0 || n.pool.Inactive() != 0 {
				t.Fatal("flooder still registered")
			}
			return
		default:
			t.Fatalf("after %d served, %d busy: %v", served, busy, err)
		}
		if served+busy > 10000 {
			t.Fatal("flooder never dropped")
		}
	}
}

// pace runs requests on a client, letting factor*(cost/rate) of metering time
// pass after each one, and returns how many got Busy.
func pace(t *testing.T, cl *Client, clock *mclock.Simulated, requests int, factor float64) (busy int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	reqs := cqBatch(t)
	hs := cl.ServerHandshake()
	for i := 0; i < requests; i++ {
		before := cl.SpentCost()
		_, err := cl.Vflux(ctx, reqs)
		var be *BusyError
		switch {
		case err == nil:
		case errors.As(err, &be):
			busy++
			clock.Run(be.Wait) // honour the wait: the retry must be served
			if _, err := cl.Vflux(ctx, reqs); err != nil {
				t.Fatalf("request after waiting %v: %v", be.Wait, err)
			}
		default:
			t.Fatal(err)
		}
		rate := max(cl.Capacity(), hs.MinCap)
		spent := cl.SpentCost() - before
		clock.Run(time.Duration(factor * float64(spent) / float64(rate) * float64(time.Second)))
	}
	return busy
}

func TestMeteringAClientPacingByTheHandshakeNeverGetsBusyAndBusyWaitsAreHonoured(t *testing.T) {
	tests := []struct {
		name     string
		factor   float64 // metering time per cost/rate
		wantBusy bool
	}{
		{"a client pacing at its capacity never gets Busy", 1, false},
		{"a client pacing at twice its capacity gets Busy and is served after the wait", 0.5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meterClock := new(mclock.Simulated)
			n := startRealNode(t, realNodeConfig{poolClock: new(mclock.Simulated), meterClock: meterClock, maxCount: 10,
				maxCap: 10 * testMinCap, allowance: time.Minute, pos: defaultFactors, neg: defaultFactors})
			cl := startVfxClient(t).dial(t, n.vfxServer)
			waitUpdate(t, cl)
			busy := pace(t, cl, meterClock, 300, tt.factor)
			if (busy > 0) != tt.wantBusy {
				t.Fatalf("%d Busy replies in 300 requests", busy)
			}
			select {
			case <-cl.Done():
				t.Fatalf("disconnected: %v", cl.DisconnectReason())
			default:
			}
		})
	}
}

func TestAWaitingClientIsActivatedWhenASlotFreesAndTimesOutOtherwise(t *testing.T) {
	clock := new(mclock.Simulated)
	n := startRealNode(t, realNodeConfig{poolClock: clock, maxCount: 1, maxCap: testMinCap,
		allowance: 10 * time.Second, maxPeers: 4, pos: defaultFactors, neg: defaultFactors})
	events := make(chan clientpool.Event, 100)
	sub := n.pool.SubscribeEvents(events)
	defer sub.Unsubscribe()
	first := startVfxClient(t).dial(t, n.vfxServer)
	waitUpdate(t, first)

	// The pool is full: the second client stays connected, inactive, with no update.
	second := startVfxClient(t)
	waiting := second.dial(t, n.vfxServer)
	waitPoolEvent(t, events, clientpool.EventConnected, second.id())
	if count, _ := n.pool.Active(); count != 1 || n.pool.Inactive() != 1 || waiting.Capacity() != 0 {
		t.Fatalf("active %d, inactive %d, waiting client's capacity %d", count, n.pool.Inactive(), waiting.Capacity())
	}
	// The first leaves: the waiting client is activated and told so.
	first.Close()
	waitDone(t, first)
	if u := waitUpdate(t, waiting); u.Capacity != testMinCap {
		t.Fatalf("activated client got %+v", u)
	}

	// A third waits inactive; when its allowance runs out on the pool's clock it
	// is disconnected as evicted.
	third := startVfxClient(t)
	late := third.dial(t, n.vfxServer)
	waitPoolEvent(t, events, clientpool.EventConnected, third.id())
	clock.Run(11 * time.Second)
	if r := waitDone(t, late); r != p2p.DiscTooManyPeers {
		t.Fatalf("timed-out client saw %v, want %v", r, p2p.DiscTooManyPeers)
	}
	n.watcher.ExpectDrop(third.id(), p2p.DiscTooManyPeers, netTimeout)
	if count, _ := n.pool.Active(); count != 1 || n.pool.Inactive() != 0 {
		t.Fatalf("active %d, inactive %d after the timeout", count, n.pool.Inactive())
	}
}

// waitPoolEvent waits for the pool to report an event of type typ for id.
func waitPoolEvent(t testing.TB, events <-chan clientpool.Event, typ clientpool.EventType, id enode.ID) {
	t.Helper()
	timeout := time.After(netTimeout)
	for {
		select {
		case ev := <-events:
			if ev.Type == typ && ev.ID == id {
				return
			}
		case <-timeout:
			t.Fatalf("no pool event %d for %x", typ, id[:8])
		}
	}
}

func TestOnTheRealClockBusyWaitIsEnoughForTheRetry(t *testing.T) {
	n := startRealNode(t, realNodeConfig{poolClock: new(mclock.Simulated), meterClock: mclock.System{}, maxCount: 10,
		maxCap: 10 * testMinCap, allowance: time.Minute, pos: defaultFactors, neg: defaultFactors})
	cl := startVfxClient(t).dial(t, n.vfxServer)
	waitUpdate(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	reqs := cqBatch(t)
	for i := 0; ; i++ {
		_, err := cl.Vflux(ctx, reqs)
		var be *BusyError
		if errors.As(err, &be) {
			// Honouring the advertised wait (the behaviour under test, not a
			// synchronisation) is enough for the retry to be served.
			<-time.After(be.Wait)
			if _, err := cl.Vflux(ctx, reqs); err != nil {
				t.Fatalf("retry after the %v wait: %v", be.Wait, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > 100000 {
			t.Fatal("never busy")
		}
	}
}

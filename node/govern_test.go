package node

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/protocol"
)

// Capacities of the eth tests, in cost units per second: a header reply of
// headersPerRequest headers costs ~500, so a minCap client is served ~10
// requests a second and the rates are measurable within 2-3 s, while even a
// 4x client stays far below what the server can send under -race on a
// loaded machine (so every client does spend its buffer and wait).
const (
	govMinCap  = 5_000
	measureFor = 2500 * time.Millisecond
)

// governConfig is a pool of maxClients at govMinCap each and total capacity
// total, with only the request price set (1 token per cost unit), so a paid
// client's balance falls exactly by what it is served.
func governConfig(maxClients, total uint64) Config {
	cfg := testConfig(maxClients)
	cfg.MinCap = govMinCap
	cfg.Capacity = total
	cfg.PosPrices = Prices{Request: 1}
	cfg.NegPrices = Prices{Request: 1}
	return cfg
}

// flowOf returns the governed flow of the connected client id.
func (n *testNode) flowOf(t testing.TB, id enode.ID) *flow {
	t.Helper()
	var f *flow
	eventually(t, "client registered", func() bool {
		n.svc.clients.mu.Lock()
		defer n.svc.clients.mu.Unlock()
		if c := n.svc.clients.clients[id]; c != nil && c.registered {
			f = c.flow
		}
		return f != nil
	})
	return f
}

// downloads runs download for each peer until the test ends.
type downloads struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startDownloads(t *testing.T, clients []*ethClient, peers []*ethPeer) *downloads {
	ctx, cancel := context.WithCancel(context.Background())
	d := &downloads{cancel: cancel}
	for i := range clients {
		d.wg.Add(1)
		go func(c *ethClient, p *ethPeer) {
			defer d.wg.Done()
			c.download(ctx, p)
		}(clients[i], peers[i])
	}
	t.Cleanup(d.stop)
	return d
}

func (d *downloads) stop() {
	d.cancel()
	d.wg.Wait()
}

// servedRates waits until every flow has waited for its buffer (the burst
// buffer is spent), then measures each one's charged cost per second.
func servedRates(t *testing.T, flows ...*flow) []float64 {
	t.Helper()
	rates, _ := measureRates(t, flows, nil)
	return rates
}

// measureRates is servedRates that also measures the bytes per second each
// of clients (when given, one per flow) received.
func measureRates(t testing.TB, flows []*flow, clients []*ethClient) (cost, bytes []float64) {
	t.Helper()
	eventually(t, "buffers spent", func() bool {
		for _, f := range flows {
			if _, waits, _ := f.stats(); waits == 0 {
				return false
			}
		}
		return true
	})
	start := make([]uint64, len(flows))
	startBytes := make([]int64, len(clients))
	for i, f := range flows {
		start[i], _, _ = f.stats()
	}
	for i, c := range clients {
		startBytes[i] = c.received.Load()
	}
	t0 := time.Now()
	<-time.After(measureFor) // a measurement window, not a synchronisation
	secs := time.Since(t0).Seconds()
	cost = make([]float64, len(flows))
	for i, f := range flows {
		served, _, _ := f.stats()
		cost[i] = float64(served-start[i]) / secs
	}
	bytes = make([]float64, len(clients))
	for i, c := range clients {
		bytes[i] = float64(c.received.Load()-startBytes[i]) / secs
	}
	return cost, bytes
}

func within(got, want, frac float64) bool { return math.Abs(got-want) <= frac*want }

func TestGovernedEthServesPaidAndFreeClientsAtTheirCapacity(t *testing.T) {
	const paidCap = 3 * govMinCap
	n := startEthNode(t, governConfig(2, govMinCap+paidCap), "eth", "snap")
	api := &API{s: n.svc}

	paid, free := newEthClient(t, false), newEthClient(t, false)
	const funds = 1_000_000_000
	if _, err := api.AddBalance(paid.id().String(), Amount(fmt.Sprint(int64(funds))), nil); err != nil {
		t.Fatal(err)
	}
	paidPeer, _ := paid.connect(t, n)
	freePeer, _ := free.connect(t, n)
	if err := api.SetClientParams([]string{paid.id().String()}, map[string]interface{}{"capacity": float64(paidCap)}); err != nil {
		t.Fatal(err)
	}
	paidFlow, freeFlow := n.flowOf(t, paid.id()), n.flowOf(t, free.id())

	d := startDownloads(t, []*ethClient{paid, free}, []*ethPeer{paidPeer, freePeer})
	rates := servedRates(t, paidFlow, freeFlow)
	d.stop()
	t.Logf("served cost rates: paid %.0f/s (capacity %d), free %.0f/s (capacity %d)", rates[0], paidCap, rates[1], govMinCap)
	if !within(rates[0], paidCap, 0.15) {
		t.Errorf("paid client served %.0f cost/s, want %d ±15%%", rates[0], paidCap)
	}
	if !within(rates[1], govMinCap, 0.15) {
		t.Errorf("free client served %.0f cost/s, want %d ±15%%", rates[1], govMinCap)
	}
	served, _, _ := paidFlow.stats()
	info, err := api.ClientInfo([]string{paid.id().String()})
	if err != nil {
		t.Fatal(err)
	}
	spent := funds - info[paid.id().String()].PosBalance
	if diff := math.Abs(float64(spent) - float64(served)); diff > float64(served)/1000+1 {
		t.Errorf("paid balance fell by %d, served cost %d", spent, served)
	}
	if got := strings.Join(info[paid.id().String()].Protocols, ","); !strings.Contains(got, "eth/") || strings.Contains(got, "vfx") {
		t.Errorf("clientInfo protocols %q, want eth versions only", got)
	}
}

func TestGovernedPoolFullLeavesTheNextFreePeerUnservedThenEvictsIt(t *testing.T) {
	cfg := governConfig(2, 2*govMinCap)
	cfg.InactiveAllowance = time.Second
	n := startEthNode(t, cfg, "eth", "snap")
	for i := 0; i < 2; i++ {
		c := newEthClient(t, false)
		c.connect(t, n)
		n.flowOf(t, c.id())
	}
	eventually(t, "two active", func() bool { count, _ := n.svc.pool.Active(); return count == 2 })

	late := newEthClient(t, false)
	w := p2ptest.Watch(t, late.srv)
	p, _ := late.connect(t, n)
	lateFlow := n.flowOf(t, late.id())
	// Its requests wait unserved until its allowance ends.
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- late.download(ctx, p) }()
	reason, _ := w.WaitDrop(n.stack.Server().Self().ID(), netTimeout)
	if reason != p2p.DiscTooManyPeers {
		t.Errorf("waiting free peer dropped with %v, want %v", reason, p2p.DiscTooManyPeers)
	}
	cancel() // its pending request is never answered
	<-done
	if late.received.Load() != 0 {
		t.Errorf("an inactive peer was served %d bytes", late.received.Load())
	}
	if served, _, _ := lateFlow.stats(); served != 0 {
		t.Errorf("an inactive peer was charged %d", served)
	}
}

func TestGovernedPaidNewcomerEvictsTheLowestFreePeerFromEthSnapAndVfx(t *testing.T) {
	cfg := governConfig(2, 2*govMinCap)
	cfg.PosPrices, cfg.NegPrices = DefaultConfig().PosPrices, DefaultConfig().NegPrices
	cfg.ConnectedBias = 0
	cfg.InactiveAllowance = 0 // a deactivated free peer leaves at once
	n := startEthNode(t, cfg, "eth", "snap")
	api := &API{s: n.svc}

	var frees []*ethClient
	var watchers []*p2ptest.Watcher
	var vfxClients []*protocol.Client
	for i := 0; i < 2; i++ {
		c := newEthClientWith(t, ethClientOptions{vfx: true, snap: true})
		watchers = append(watchers, p2ptest.Watch(t, c.srv))
		_, cl := c.connect(t, n)
		vfxClients = append(vfxClients, cl)
		frees = append(frees, c)
		n.flowOf(t, c.id())
	}
	eventually(t, "two active", func() bool { count, _ := n.svc.pool.Active(); return count == 2 })
	// One client per connection, whatever it runs.
	eventually(t, "eth, snap and vfx/1 attached", func() bool {
		return strings.Join(n.svc.clients.protocolsOf(frees[0].id()), ",") == "eth/72,snap/1,vfx/1"
	})
	if got := n.svc.clients.count(); got != 2 {
		t.Errorf("%d clients for 2 connections", got)
	}

	events := make(chan Event, 64)
	sub, err := n.api.SubscribeEvents(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	paid := newEthClient(t, true)
	if _, err := api.AddBalance(paid.id().String(), Amount("1000000000"), nil); err != nil {
		t.Fatal(err)
	}
	paid.connect(t, n)
	// The node's event stream tells which protocols the newcomer runs.
	for seen := false; !seen; {
		select {
		case ev := <-events:
			seen = ev.ID == paid.id().String() && len(ev.Protocols) > 0
		case <-deadline():
			t.Fatal("no event of the paid newcomer with its protocols")
		}
	}
	evicted := -1
	select {
	case <-vfxClients[0].Done():
		evicted = 0
	case <-vfxClients[1].Done():
		evicted = 1
	case <-deadline():
		count, capacity := n.svc.pool.Active()
		st, ok := n.svc.pool.ClientInfo(paid.id())
		t.Fatalf("no free peer was evicted; active %d/%d inactive %d; paid registered %v cap %d protos %v", count, capacity, n.svc.pool.Inactive(), ok, st.Capacity, n.svc.clients.protocolsOf(paid.id()))
	}
	server := n.stack.Server().Self().ID()
	if reason, _ := watchers[evicted].WaitDrop(server, netTimeout); reason != p2p.DiscTooManyPeers {
		t.Errorf("evicted peer's connection (eth) dropped with %v, want %v", reason, p2p.DiscTooManyPeers)
	}
	if err := vfxClients[evicted].DisconnectReason(); err != p2p.DiscTooManyPeers {
		t.Errorf("evicted peer's vfx/1 ended with %v, want %v", err, p2p.DiscTooManyPeers)
	}
	if _, ok := n.svc.pool.ClientInfo(frees[1-evicted].id()); !ok {
		t.Error("the other free peer was evicted too")
	}
	if _, ok := n.svc.pool.ClientInfo(paid.id()); !ok {
		t.Error("the paid newcomer is not a client")
	}
}

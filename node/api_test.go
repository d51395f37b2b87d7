package node

import (
	"context"
	"io"
	"math"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/metrics"
	"github.com/ethereum/go-ethereum/metrics/prometheus"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/ethereum/go-ethereum/rpc"
)

func TestAPIRejectsBadArgumentsWithClearErrors(t *testing.T) {
	n := startNode(t, testConfig(4), "", true)
	id := "0x" + strings.Repeat("11", 32)
	tooBig, _ := new(big.Int).SetString("18446744073709551616", 10) // 2^64
	tests := []struct {
		name    string
		method  string
		args    []interface{}
		wantErr string
	}{
		{"a malformed node ID", "vflux_clientInfo", []interface{}{[]string{"nothex"}}, "neither 64 hex digits"},
		{"a short node ID", "vflux_addBalance", []interface{}{"0x1234", 5}, "neither 64 hex digits"},
		{"a malformed enode URL", "vflux_clientInfo", []interface{}{[]string{"enode://zz@1.2.3.4:5"}}, "invalid argument: not a valid ENR or enode URL"},
		{"no IDs at all", "vflux_clientInfo", []interface{}{[]string{}}, "no node IDs"},
		{"an amount above 2^63", "vflux_addBalance", []interface{}{id, tooBig}, "out of range"},
		{"an amount below -2^63", "vflux_addBalance", []interface{}{id, new(big.Int).Neg(tooBig)}, "out of range"},
		{"an amount that is not a number", "vflux_addBalance", []interface{}{id, "lots"}, "invalid argument"},
		{"an unknown parameter key", "vflux_setDefaultParams", []interface{}{map[string]interface{}{"pricing/bogus": 1}}, `unknown parameter "pricing/bogus"`},
		{"a negative price", "vflux_setDefaultParams", []interface{}{map[string]interface{}{"pricing/timeFactor": -1}}, "negative"},
		{"a negative negative-balance price", "vflux_setDefaultParams", []interface{}{map[string]interface{}{"pricing/negative/requestCostFactor": -0.5}}, "negative"},
		{"a price that is a string", "vflux_setDefaultParams", []interface{}{map[string]interface{}{"pricing/timeFactor": "1"}}, "must be a number"},
		{"a capacity among default params", "vflux_setDefaultParams", []interface{}{map[string]interface{}{"capacity": 5000}}, "per-client parameter"},
		{"empty params", "vflux_setDefaultParams", []interface{}{map[string]interface{}{}}, "no parameters"},
		{"a capacity below minCap", "vflux_setClientParams", []interface{}{[]string{id}, map[string]interface{}{"capacity": 10}}, "below minCap"},
		{"a fractional capacity", "vflux_setClientParams", []interface{}{[]string{id}, map[string]interface{}{"capacity": 1500.5}}, "whole number"},
		{"params for a client that is not connected", "vflux_setClientParams", []interface{}{[]string{id}, map[string]interface{}{"pricing/timeFactor": 1}}, "not connected"},
		{"a zero client limit", "vflux_setLimits", []interface{}{0, 100000}, "count must be"},
		{"a capacity limit below minCap", "vflux_setLimits", []interface{}{10, 5}, "below minCap"},
		{"an absurd bias", "vflux_setConnectedBias", []interface{}{uint64(1e12)}, "over the limit"},
		{"a zero max for priorityClientInfo", "vflux_priorityClientInfo", []interface{}{"", "", 0}, "max must be"},
		{"a bad start ID", "vflux_priorityClientInfo", []interface{}{"xyz", "", 10}, "start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res interface{}
			err := n.api.c.CallContext(context.Background(), &res, tt.method, tt.args...)
			if err == nil {
				t.Fatalf("%s(%v) succeeded with %v", tt.method, tt.args, res)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
	// Nothing was changed by the rejected calls.
	info, err := n.api.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.TotalTokens != 0 || info.MaxCount != 4 || info.DefaultParams[keyTimeFactor] != float64(0) {
		t.Errorf("rejected calls changed the server: %+v", info)
	}
}

func TestAddBalanceAcceptsHexIDsEnodeURLsAndRefusesOverflow(t *testing.T) {
	n := startNode(t, testConfig(4), "", true)
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	url := enode.NewV4(&key.PublicKey, []byte{127, 0, 0, 1}, 30303, 30303).URLv4()
	hexID := enode.PubkeyToIDV4(&key.PublicKey).String()

	if old, nw, err := n.api.AddBalance(ctx, url, big.NewInt(1000)); err != nil || old != 0 || nw != 1000 {
		t.Fatalf("AddBalance(enode URL) = [%d, %d], %v; want [0, 1000]", old, nw, err)
	}
	if old, nw, err := n.api.AddBalance(ctx, hexID, big.NewInt(500)); err != nil || old != 1000 || nw != 1500 {
		t.Fatalf("AddBalance(hex ID) = [%d, %d], %v; want [1000, 1500]", old, nw, err)
	}
	if old, nw, err := n.api.AddBalance(ctx, hexID, big.NewInt(-700)); err != nil || old != 1500 || nw != 800 {
		t.Fatalf("AddBalance(-700) = [%d, %d], %v; want [1500, 800]", old, nw, err)
	}
	_, _, err := n.api.AddBalance(ctx, hexID, big.NewInt(math.MaxInt64))
	if err == nil {
		t.Fatal("a top-up past MaxInt64 succeeded")
	}
	info, err := n.api.ClientInfo(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if ci := info[hexID]; ci.PosBalance != 800 || ci.Connected {
		t.Errorf("clientInfo = %+v, want balance 800 (the failed top-up changed nothing), not connected", ci)
	}
	prio, err := n.api.PriorityClientInfo(ctx, "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(prio) != 1 || prio[hexID].PosBalance != 800 {
		t.Errorf("priorityClientInfo = %+v, want just %s with 800", prio, hexID)
	}
}

func TestSetClientParamsChangesAConnectedClient(t *testing.T) {
	cfg := testConfig(4)
	n := startNode(t, cfg, "", true)
	ctx := context.Background()
	c := mustDial(t, n)
	waitCapacity(t, c, cfg.MinCap)
	id := c.srv.Self().ID().String()

	if _, _, err := n.api.AddBalance(ctx, id, big.NewInt(1e15)); err != nil {
		t.Fatal(err)
	}
	err := n.api.SetClientParams(ctx, []string{id}, map[string]interface{}{
		"capacity": float64(5 * cfg.MinCap), keyTimeFactor: 7.0, keyNegRequestFactor: 0.25,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitCapacity(t, c, 5*cfg.MinCap)
	info, err := n.api.ClientInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ci := info[id]
	if !ci.Connected || ci.Capacity != 5*cfg.MinCap {
		t.Errorf("clientInfo connected=%v capacity=%d, want true and %d", ci.Connected, ci.Capacity, 5*cfg.MinCap)
	}
	if ci.Params[keyTimeFactor] != 7.0 || ci.Params[keyNegRequestFactor] != 0.25 || ci.Params[keyCapacityFactor] != cfg.PosPrices.Capacity {
		t.Errorf("client params = %v, want time 7, negative request 0.25, capacity unchanged", ci.Params)
	}
	conn, err := n.api.ConnectedClientInfo(ctx, 10)
	if err != nil || len(conn) != 1 {
		t.Errorf("connectedClientInfo = %v, %v; want one client", conn, err)
	}
}

func TestDefaultParamsBiasAndLimitsShowInServerInfo(t *testing.T) {
	n := startNode(t, testConfig(4), "", true)
	ctx := context.Background()
	if err := n.api.SetDefaultParams(ctx, map[string]interface{}{keyRequestFactor: 3.0, keyNegTimeFactor: 2.0}); err != nil {
		t.Fatal(err)
	}
	if err := n.api.SetConnectedBias(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if err := n.api.SetLimits(ctx, 7, 70000); err != nil {
		t.Fatal(err)
	}
	info, err := n.api.ServerInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.DefaultParams[keyRequestFactor] != 3.0 || info.DefaultParams[keyNegTimeFactor] != 2.0 || info.DefaultParams[keyCapacityFactor] != 1e9 {
		t.Errorf("default params = %v", info.DefaultParams)
	}
	if info.ConnectedBias != 42 || info.MaxCount != 7 || info.MaxCap != 70000 {
		t.Errorf("bias %v, limits (%d, %d); want 42, (7, 70000)", info.ConnectedBias, info.MaxCount, info.MaxCap)
	}
	// maxInactive is the pool's waiting-room bound: 4 inactive slots, one kept free.
	if info.MaxInactive != 3 {
		t.Errorf("maxInactive = %d, want 3 (4 inactive slots less the one kept free)", info.MaxInactive)
	}
	// A client connecting now gets the new default prices.
	c := mustDial(t, n)
	waitCapacity(t, c, 1000)
	ci, err := n.api.ClientInfo(ctx, c.srv.Self().ID().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ci {
		if v.Params[keyRequestFactor] != 3.0 {
			t.Errorf("new client's request price = %v, want 3", v.Params[keyRequestFactor])
		}
	}
}

func TestEventsSubscriptionStreamsPoolEvents(t *testing.T) {
	n := startNode(t, testConfig(4), "", true)
	events := make(chan Event, 16)
	sub, err := n.api.SubscribeEvents(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c := mustDial(t, n)
	id := c.srv.Self().ID().String()
	seen := map[string]bool{}
	timeout := time.After(netTimeout)
	for !seen["connected"] || !seen["activated"] {
		select {
		case ev := <-events:
			if ev.ID == id {
				seen[ev.Type] = true
			}
		case err := <-sub.Err():
			t.Fatalf("subscription ended: %v", err)
		case <-timeout:
			t.Fatalf("events seen for the client: %v, want connected and activated", seen)
		}
	}
	c.cl.Close()
	for !seen["disconnected"] {
		select {
		case ev := <-events:
			if ev.ID == id {
				seen[ev.Type] = true
			}
		case <-timeout:
			t.Fatal("no disconnected event after the client left")
		}
	}
}

func TestMetricsFollowThePoolOnThePrometheusHandler(t *testing.T) {
	n := startNode(t, testConfig(4), "", true)
	connectedBefore := connectedMeter.Snapshot().Count()
	c := mustDial(t, n)
	waitCapacity(t, c, 1000)
	eventually(t, "vflux_clients_active at 1", func() bool { return activeCountGauge.Snapshot().Value() == 1 })
	if activeCapGauge.Snapshot().Value() != 1000 {
		t.Errorf("vflux_capacity_active = %d, want 1000", activeCapGauge.Snapshot().Value())
	}
	eventually(t, "vflux_clients_connected_total", func() bool { return connectedMeter.Snapshot().Count() > connectedBefore })

	srv := httptest.NewServer(prometheus.Handler(metrics.DefaultRegistry))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"vflux_clients_active 1\n", "vflux_capacity_active 1000\n", "vflux_clients_inactive 0\n",
		"vflux_clients_max 4\n", "vflux_capacity_max 40000\n",
		"vflux_tokens_held", "vflux_clients_connected_total", "vflux_capacity_queries_zero_total",
		"vflux_requests_served_total", "vflux_events_dropped_total", "vflux_tokens_added_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("Prometheus output lacks %q", want)
		}
	}
}

func TestHTTPServesTheVfluxAPIOnlyWhenListed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		modules []string
		want    bool
	}{
		{"vflux not listed", []string{"web3"}, false},
		{"vflux listed", []string{"web3", "vflux"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(2)
			cfg.Serve = true
			stack, err := gethnode.New(&gethnode.Config{
				Name: "vflux", HTTPHost: "127.0.0.1", HTTPPort: 0, HTTPModules: tt.modules,
				P2P: p2p.Config{ListenAddr: "127.0.0.1:0", NoDiscovery: true},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer stack.Close()
			if _, err := New(stack, cfg); err != nil {
				t.Fatal(err)
			}
			if err := stack.Start(); err != nil {
				t.Fatal(err)
			}
			c, err := rpc.Dial(stack.HTTPEndpoint())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var info ServerInfo
			err = c.Call(&info, "vflux_serverInfo")
			if tt.want && (err != nil || info.MaxCount != 2) {
				t.Errorf("vflux_serverInfo over HTTP = %+v, %v; want it served", info, err)
			}
			if !tt.want && err == nil {
				t.Error("vflux_serverInfo is served over HTTP without being listed")
			}
			// IPC and in-process always serve it.
			if _, err := NewRPCClient(stack.Attach()).ServerInfo(context.Background()); err != nil {
				t.Errorf("in-process RPC: %v", err)
			}
		})
	}
}

// A client the pool holds is reported from the pool alone: this one is
// registered with the pool directly (as an embedding program's own transport
// would), so the node has no record of it at all.
func TestTheAPIReportsWhatThePoolHoldsOfAClient(t *testing.T) {
	clock := &mclock.Simulated{}
	cfg := testConfig(4)
	cfg.Clock = clock
	n := startNode(t, cfg, "", true)
	ctx := context.Background()
	p := gaugePeer{enode.SignNull(new(enr.Record), enode.ID{0xab, 1})}
	id := p.n.ID().String()
	if _, _, err := n.api.AddBalance(ctx, id, big.NewInt(1e15)); err != nil {
		t.Fatal(err)
	}
	if n.svc.pool.Register(p) == nil {
		t.Fatal("the pool refused the client")
	}
	defer n.svc.pool.Unregister(p)
	clock.Run(3 * time.Second)

	conn, err := n.api.ConnectedClientInfo(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	ci, ok := conn[id]
	st, _ := n.svc.pool.ClientInfo(p.n.ID())
	if !ok || !ci.Connected || ci.Capacity == 0 || ci.Capacity != st.Capacity {
		t.Fatalf("connectedClientInfo = %+v, want the pool's connected client with capacity %d", conn, st.Capacity)
	}
	if ci.ConnectionTime != 3 {
		t.Errorf("connection time %v s, want 3 (pool clock)", ci.ConnectionTime)
	}
	if ci.PosBalance != st.PosBalance || ci.NegBalance != st.NegBalance {
		t.Errorf("balances %d/%d, the pool holds %d/%d", ci.PosBalance, ci.NegBalance, st.PosBalance, st.NegBalance)
	}
	if info, err := n.api.ServerInfo(ctx); err != nil || info.ConnectedCount != 1 {
		t.Errorf("serverInfo connectedCount = %+v, %v; want 1", info, err)
	}

	if err := n.api.SetClientParams(ctx, []string{id}, map[string]interface{}{keyTimeFactor: 7.0}); err != nil {
		t.Fatalf("setClientParams of the pool's client: %v", err)
	}
	info, err := n.api.ClientInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := info[id].Params[keyTimeFactor]; got != 7.0 {
		t.Errorf("time factor after setClientParams = %v, want 7", got)
	}
	if st, _ := n.svc.pool.ClientInfo(p.n.ID()); PricesFromPool(st.PosFactors).Time != 7 {
		t.Errorf("the pool's time price is %v, want 7", PricesFromPool(st.PosFactors).Time)
	}
}

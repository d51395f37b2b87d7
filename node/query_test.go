package node

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/params"
)

// newQueryClient starts a client library endpoint with a fresh key, able to
// reach server, that asks under the vflux service name service ("" = the
// default).
func newQueryClient(t testing.TB, server *enode.Node, service string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		PrivateKey: p2ptest.NewKey(t),
		ListenIP:   client.ListenIPFor(server),
		Service:    service,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// queryNode asks n, from a fresh client, for the capacity each amount buys.
func queryNode(t *testing.T, n *testNode, timeout time.Duration, amounts ...int64) (*client.Offer, error) {
	t.Helper()
	server := n.stack.Server().Self()
	c := newQueryClient(t, server, "")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var bigs []*big.Int
	for _, a := range amounts {
		bigs = append(bigs, big.NewInt(a))
	}
	return c.QueryAmounts(ctx, server, bigs)
}

func TestTalkQueryAnswersCapacityForTokenAmounts(t *testing.T) {
	cfg := testConfig(10)
	n := startNode(t, cfg, "", false)
	zeroBefore, capBefore := n.svc.pool.CapacityQueryCounts()

	res, err := queryNode(t, n, netTimeout, 0, 1e12)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Capacities) != 2 {
		t.Fatalf("got %d capacities for 2 amounts", len(res.Capacities))
	}
	if res.Capacities[0] != cfg.MinCap {
		t.Errorf("a free client would get %d in an empty pool, want minCap %d", res.Capacities[0], cfg.MinCap)
	}
	if res.Capacities[1] <= cfg.MinCap {
		t.Errorf("1e12 tokens buy capacity %d, want more than minCap", res.Capacities[1])
	}
	if res.Info == nil {
		t.Fatal("no server info in the answer")
	}
	if res.Info.MinCap != cfg.MinCap || res.Info.MaxCount != cfg.MaxClients || res.Info.MaxCap != cfg.TotalCapacity() {
		t.Errorf("info = %+v, want minCap %d, maxCount %d, maxCap %d", res.Info, cfg.MinCap, cfg.MaxClients, cfg.TotalCapacity())
	}
	if res.Info.ConnectedBias != uint64(cfg.ConnectedBias/time.Second) {
		t.Errorf("info bias %d s, want %v", res.Info.ConnectedBias, cfg.ConnectedBias)
	}
	if res.Balance == nil || res.Balance.Pos != 0 {
		t.Errorf("a fresh querier's balance = %+v, want zero", res.Balance)
	}
	// The answer bought capacity: counted as nonzero by the pool, and the
	// metrics read the pool's counts.
	zero, nonzero := n.svc.pool.CapacityQueryCounts()
	if nonzero != capBefore+1 || zero != zeroBefore {
		t.Errorf("the pool counted the query as %d zero, %d nonzero; want one more nonzero than %d, %d", zero, nonzero, zeroBefore, capBefore)
	}
	updateGauges(n.svc.pool)
	if got := capQueryNonZeroGauge.Snapshot().Value(); got != int64(nonzero) {
		t.Errorf("vflux_capacity_queries_nonzero_total = %d, want the pool's %d", got, nonzero)
	}
}

func TestQueryWithoutDiscoveryFailsClearlyWhileRLPxServes(t *testing.T) {
	cfg := testConfig(2)
	n := startNode(t, cfg, "", true)
	if n.stack.Server().DiscoveryV5() != nil {
		t.Fatal("discv5 is on with NoDiscovery")
	}
	c := mustDial(t, n)
	waitCapacity(t, c, cfg.MinCap)

	_, err := queryNode(t, n, 1500*time.Millisecond, 0)
	if !errors.Is(err, client.ErrNoAnswer) {
		t.Fatalf("query of a node without discovery = %v, want %v", err, client.ErrNoAnswer)
	}
}

func TestLegacyServiceNameAnswersTheSameQuery(t *testing.T) {
	n := startNode(t, testConfig(10), "", false)
	server := n.stack.Server().Self()
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	amounts := []*big.Int{big.NewInt(0), big.NewInt(1e11)}
	vfx, err := newQueryClient(t, server, params.ServiceName).QueryAmounts(ctx, server, amounts)
	if err != nil {
		t.Fatal(err)
	}
	les, err := newQueryClient(t, server, params.LegacyServiceName).QueryAmounts(ctx, server, amounts)
	if err != nil {
		t.Fatalf("query under %q: %v", params.LegacyServiceName, err)
	}
	for i := range amounts {
		if vfx.Capacities[i] != les.Capacities[i] {
			t.Errorf("amount %v: %q answers %d, %q answers %d", amounts[i], params.ServiceName, vfx.Capacities[i], params.LegacyServiceName, les.Capacities[i])
		}
	}
	if _, err := newQueryClient(t, server, "nope").QueryAmounts(ctx, server, amounts); !errors.Is(err, client.ErrNoAnswer) {
		t.Errorf("query of an unknown service = %v, want %v", err, client.ErrNoAnswer)
	}
}

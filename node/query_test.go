package node

import (
	"context"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vflux-net/vflux/params"
)

func queryNode(t *testing.T, n *testNode, timeout time.Duration, amounts ...int64) (*QueryResult, error) {
	t.Helper()
	server := n.stack.Server().Self()
	q, err := QuerierFor(server)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var bigs []*big.Int
	for _, a := range amounts {
		bigs = append(bigs, big.NewInt(a))
	}
	return q.Query(ctx, server, params.ServiceName, bigs, 0)
}

func TestTalkQueryAnswersCapacityForTokenAmounts(t *testing.T) {
	cfg := testConfig(10)
	n := startNode(t, cfg, "", false)
	capBefore := capQueryNonZeroMeter.Snapshot().Count()

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
	if capQueryNonZeroMeter.Snapshot().Count() <= capBefore {
		t.Error("capQuery/nonzero meter did not count the query")
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
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("query of a node without discovery = %v, want %v", err, ErrNoAnswer)
	}
}

func TestParseServerNodeRejectsUnusableAddresses(t *testing.T) {
	good := "enode://a979fb575495b8d6db44f750317d0f4622bf4c2aa3365d6af7c284339968eef29b69ad0dce72a4d8db5ebb4968de0e3bec910127f134779fbcb0cb6d3331163c@127.0.0.1:30303"
	tests := []struct {
		name, in, wantErr string
	}{
		{"an enode URL with an address", good, ""},
		{"an enode URL without an address", strings.Split(good, "@")[0], "no IP and UDP port"},
		{"garbage", "hello", "bad server address"},
		{"a truncated ENR", "enr:-Je4QFkmt3", "bad server address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseServerNode(tt.in)
			if tt.wantErr == "" {
				if err != nil || n == nil {
					t.Fatalf("ParseServerNode = %v, %v", n, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestQueryRejectsBadAmountLists(t *testing.T) {
	q, err := NewQuerier(net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	n := q.Self()
	for _, count := range []int{0, params.MaxCapQueryAmounts + 1} {
		amounts := make([]*big.Int, count)
		for i := range amounts {
			amounts[i] = big.NewInt(1)
		}
		if _, err := q.Query(context.Background(), n, "vfx", amounts, 0); err == nil {
			t.Errorf("a query with %d amounts was sent", count)
		}
	}
}

func TestLegacyServiceNameAnswersTheSameQuery(t *testing.T) {
	n := startNode(t, testConfig(10), "", false)
	server := n.stack.Server().Self()
	q, err := QuerierFor(server)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	amounts := []*big.Int{big.NewInt(0), big.NewInt(1e11)}
	vfx, err := q.Query(ctx, server, params.ServiceName, amounts, 0)
	if err != nil {
		t.Fatal(err)
	}
	les, err := q.Query(ctx, server, params.LegacyServiceName, amounts, 0)
	if err != nil {
		t.Fatalf("query under %q: %v", params.LegacyServiceName, err)
	}
	for i := range amounts {
		if vfx.Capacities[i] != les.Capacities[i] {
			t.Errorf("amount %v: %q answers %d, %q answers %d", amounts[i], params.ServiceName, vfx.Capacities[i], params.LegacyServiceName, les.Capacities[i])
		}
	}
	if _, err := q.Query(ctx, server, "nope", amounts, 0); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("query of an unknown service = %v, want %v", err, ErrNoAnswer)
	}
}

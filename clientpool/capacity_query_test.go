package clientpool

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/vflux"
)

// capQuery sends a "cq" with the given bias (seconds) and token amounts.
func capQuery(t *testing.T, pool *ClientPool, id enode.ID, freeID string, bias uint64, amounts ...int64) vflux.CapacityQueryReply {
	t.Helper()
	req := vflux.CapacityQueryReq{Bias: bias, AddTokens: make([]vflux.IntOrInf, len(amounts))}
	for i, a := range amounts {
		req.AddTokens[i].SetInt64(a)
	}
	enc, _ := rlp.EncodeToBytes(&req)
	reply := pool.Handle(id, freeID, vflux.CapacityQueryName, enc)
	if reply == nil {
		return nil
	}
	var r vflux.CapacityQueryReply
	if err := rlp.DecodeBytes(reply, &r); err != nil {
		t.Fatalf("cq reply %x does not decode: %v", reply, err)
	}
	return r
}

// perCapacity makes capacity cost 1 token per second per unit.
var perCapacity = PriceFactors{CapacityFactor: 1e-3}

// fullOfFreeClients returns a pool (10000 slots, maxCap 100, minCap 1) with 99
// free clients at minCap and capacity priced per unit.
func fullOfFreeClients(t *testing.T, clock *mclock.Simulated) (*ClientPool, []*peer) {
	pool := newTestPool(t, nil, clock, 10000, 100)
	pool.SetDefaultFactors(perCapacity, PriceFactors{})
	var peers []*peer
	for i := 0; i < 99; i++ {
		p := newPeer(i, time.Hour)
		pool.Register(p)
		peers = append(peers, p)
	}
	return pool, peers
}

func TestCapacityQueryAnswersWhatTheBalancePaysFor(t *testing.T) {
	// Fix: the original divided the priority by capacity twice and answered 14
	// where 60 was obtainable. A client with 180*60+90 tokens can pay 3 minutes
	// of bias at capacity 60 (1 token per second per unit) but not at 61; every
	// competitor is a free client it out-ranks.
	clock := &mclock.Simulated{}
	pool, _ := fullOfFreeClients(t, clock)
	x := newPeer(500, time.Hour)
	addBalance(pool, x.node.ID(), 180*60+90)
	if got := capQuery(t, pool, x.node.ID(), x.freeID, 0, 0); !reflect.DeepEqual(got, vflux.CapacityQueryReply{60}) {
		t.Fatalf("cq answered %v, want [60]", got)
	}
	pool.Register(x)
	if got, err := pool.SetCapacity(x.node, 60, 0, true); err != nil || got != 60 {
		t.Fatalf("SetCapacity(60) = %d, %v after cq answered 60", got, err)
	}
}

func TestCapacityQueryAgreesWithSetCapacity(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 100)
	for i := 0; i < 9; i++ {
		p := newPeer(i, time.Hour)
		addBalance(pool, p.node.ID(), int64(i+1)*100e9)
		pool.Register(p)
		if got, _ := pool.SetCapacity(p.node, 10, 0, false); got != 10 {
			t.Fatalf("setup: client %d got %d", i, got)
		}
	}
	x := newPeer(100, time.Hour)
	addBalance(pool, x.node.ID(), 2000e9)
	answer := capQuery(t, pool, x.node.ID(), x.freeID, 0, 0)
	if len(answer) != 1 || answer[0] <= 10 || answer[0] >= 90 {
		t.Fatalf("cq answered %v, want a capacity that needs cuts (between 10 and 90)", answer)
	}
	pool.Register(x)
	if x.capacity() != 1 {
		t.Fatalf("x not admitted")
	}
	more := answer[0] + (answer[0]+9)/10
	if got, err := pool.SetCapacity(x.node, more, 0, true); err != nil || got >= more {
		t.Fatalf("10%% more than answered: SetCapacity(%d) = %d, %v; want a partial grant", more, got, err)
	}
	pool.SetCapacity(x.node, 1, 0, true)
	if got, err := pool.SetCapacity(x.node, answer[0], 0, true); err != nil || got != answer[0] {
		t.Fatalf("SetCapacity(%d) = %d, %v after cq answered it", answer[0], got, err)
	}
}

func TestCapacityQueryRules(t *testing.T) {
	clock := &mclock.Simulated{}
	pool, _ := fullOfFreeClients(t, clock)
	rich := nodeID(600)
	addBalance(pool, rich, 1e15)
	tests := []struct {
		name    string
		id      enode.ID
		bias    uint64
		amounts []int64
		want    vflux.CapacityQueryReply
	}{
		{"a free client is answered at most minCap", nodeID(700), 0, []int64{0}, vflux.CapacityQueryReply{1}},
		{"added tokens raise the answer", nodeID(700), 0, []int64{0, 180*30 + 10, 180*60 + 90}, vflux.CapacityQueryReply{1, 30, 60}},
		{"negative amounts are tokens taken away", rich, 0, []int64{-1e15}, vflux.CapacityQueryReply{1}},
		{"a rich client gets everything", rich, 0, []int64{0}, vflux.CapacityQueryReply{100}},
		{"a huge bias is clamped to one day without overflow", nodeID(700), math.MaxUint64, []int64{86400*50 + 100}, vflux.CapacityQueryReply{50}},
		{"infinite tokens are the most tokens", nodeID(700), 0, []int64{math.MaxInt64}, vflux.CapacityQueryReply{100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := capQuery(t, pool, tt.id, "", tt.bias, tt.amounts...); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("cq answered %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCapacityQueryAnswersZeroBelowMinCapAndWhenNotSynced(t *testing.T) {
	clock := &mclock.Simulated{}
	synced := false
	pool := NewClientPool(nil, 1, 3*time.Minute, clock, func() bool { return synced })
	pool.SetLimits(1, 1)
	pool.Start()
	defer pool.Stop()
	id := nodeID(1)
	if got := capQuery(t, pool, id, "", 0, 0, 1e9); !reflect.DeepEqual(got, vflux.CapacityQueryReply{0, 0}) {
		t.Fatalf("unsynced pool answered %v", got)
	}
	synced = true
	if got := capQuery(t, pool, id, "", 0, 0); !reflect.DeepEqual(got, vflux.CapacityQueryReply{1}) {
		t.Fatalf("synced empty pool answered %v, want [1]", got)
	}
	pool.SetDefaultFactors(testFactors, testFactors)
	pool.SetConnectedBias(time.Hour)
	p := newPeer(2, time.Hour)
	addBalance(pool, p.node.ID(), 1e15)
	pool.Register(p)
	if got := capQuery(t, pool, id, "", 0, 0); !reflect.DeepEqual(got, vflux.CapacityQueryReply{0}) {
		t.Fatalf("full pool answered %v to a free client, want [0]", got)
	}
}

func TestCapacityQueryRejectsBadRequests(t *testing.T) {
	pool := newTestPool(t, nil, &mclock.Simulated{}, 1, 1)
	enc := func(v interface{}) []byte { b, _ := rlp.EncodeToBytes(v); return b }
	tests := []struct {
		name string
		req  string
		data []byte
	}{
		{"no amounts", "cq", enc(&vflux.CapacityQueryReq{})},
		{"17 amounts", "cq", enc(&vflux.CapacityQueryReq{AddTokens: make([]vflux.IntOrInf, 17)})},
		{"undecodable params", "cq", []byte{0xc3, 0x01}},
		{"an unknown name", "what", nil},
		{"bal with params", "bal", enc(uint64(5))},
		{"info with params", "info", enc([]uint{1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := pool.Handle(nodeID(1), "", tt.req, tt.data); r != nil {
				t.Fatalf("answered %x, want nil", r)
			}
		})
	}
	if r := capQuery(t, pool, nodeID(1), "", 0, make([]int64, 16)...); len(r) != 16 {
		t.Fatalf("16 amounts answered %v", r)
	}
}

func TestBalanceAndInfoRequests(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 7, 70)
	pool.SetDefaultFactors(PriceFactors{TimeFactor: 2e-9, CapacityFactor: 3e-9, RequestFactor: 0.5}, PriceFactors{TimeFactor: 1e-9})
	pool.SetExpirationTCs(0, 3600)
	id := nodeID(1)
	pool.BalanceOperation(id, "10.0.0.1", func(op AtomicBalanceOperator) { op.SetBalance(123, 456) })
	for _, params := range [][]byte{nil, {0xc0}} {
		var bal vflux.BalanceReply
		if err := rlp.DecodeBytes(pool.Handle(id, "10.0.0.1", "bal", params), &bal); err != nil || bal != (vflux.BalanceReply{Pos: 123, Neg: 456}) {
			t.Fatalf("bal with params %x = %+v, %v", params, bal, err)
		}
	}
	var info vflux.ServerInfoReply
	if err := rlp.DecodeBytes(pool.Handle(id, "", "info", nil), &info); err != nil {
		t.Fatal(err)
	}
	want := vflux.ServerInfoReply{
		MinCap: 1, MaxCount: 7, MaxCap: 70,
		PosFactors: [3]uint64{2000, 3000, 500}, NegFactors: [3]uint64{1000, 0, 0},
		PosExpirationTC: 0, NegExpirationTC: 3600, ConnectedBias: 180,
	}
	if info != want {
		t.Fatalf("info = %+v\nwant   %+v", info, want)
	}
}

func TestCapacityCurveRebuildRule(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 1000)
	x := nodeID(900)
	addBalance(pool, x, 1e15)
	ask := func() uint64 { return capQuery(t, pool, x, "", 0, 0)[0] }
	if got := ask(); got != 1000 {
		t.Fatalf("empty pool answered %d", got)
	}
	y := newPeer(1, time.Hour)
	addBalance(pool, y.node.ID(), math.MaxInt64/2)
	pool.Register(y) // moves 0.1% of maxCap: the cached curve still answers
	if got := ask(); got != 1000 {
		t.Fatalf("small change rebuilt the curve at once: %d", got)
	}
	clock.Run(100 * time.Millisecond)
	if got := ask(); got != 999 {
		t.Fatalf("curve not rebuilt after 100 ms: %d, want 999", got)
	}
	pool.SetCapacity(y.node, 21, 0, false) // moves 2%: rebuilt on the next query
	if got := ask(); got != 979 {
		t.Fatalf("curve not rebuilt after a 2%% change: %d, want 979", got)
	}
}

func TestCapacityQueryCountsTheAskersOwnAllocationAsFree(t *testing.T) {
	clock := &mclock.Simulated{}
	pool := newTestPool(t, nil, clock, 10, 100)
	x, free := newPeer(1, time.Hour), newPeer(2, time.Hour)
	addBalance(pool, x.node.ID(), 1e15)
	pool.Register(x)
	pool.Register(free)
	if got, _ := pool.SetCapacity(x.node, 50, 0, false); got != 50 {
		t.Fatalf("setup: x got %d", got)
	}
	// 49 units are free, x holds 50 and out-ranks the free client's 1.
	if got := capQuery(t, pool, x.node.ID(), x.freeID, 0, 0); !reflect.DeepEqual(got, vflux.CapacityQueryReply{100}) {
		t.Fatalf("connected client's cq answered %v, want [100]", got)
	}
	if got, err := pool.SetCapacity(x.node, 100, 0, true); err != nil || got != 100 {
		t.Fatalf("SetCapacity(100) = %d, %v after cq answered 100", got, err)
	}
}

func TestCapacityQueryOfAnUnconnectedClientCountsDecay(t *testing.T) {
	// A client that is not connected is priced from its stored balance; with a
	// positive time constant its tokens decay during the bias as well. The
	// answer before connecting must be the one it gets once connected (which
	// counts decay), not the no-decay answer of 60 (3 minutes at capacity 60).
	clock := &mclock.Simulated{}
	pool, _ := fullOfFreeClients(t, clock)
	pool.SetExpirationTCs(60, 0)
	x := newPeer(500, time.Hour)
	addBalance(pool, x.node.ID(), 180*60+90)
	before := capQuery(t, pool, x.node.ID(), x.freeID, 0, 0)
	if len(before) != 1 || before[0] >= 60 {
		t.Fatalf("cq before connecting answered %v, want below 60 (decay over the 3 minute bias)", before)
	}
	pool.Register(x)
	after := capQuery(t, pool, x.node.ID(), x.freeID, 0, 0)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("cq answered %v before connecting and %v once connected", before, after)
	}
}

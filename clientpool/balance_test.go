package clientpool

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

func TestTimeCostIsChargedToThePositiveBalanceFirstAndTheRestToTheNegative(t *testing.T) {
	tests := []struct {
		name             string
		pos              uint64
		posF, negF       PriceFactors
		cap              uint64
		active           time.Duration
		wantPos, wantNeg uint64
	}{
		{"a covered interval only spends the positive balance", 60e9, testFactors, testFactors, 1, 10 * time.Second, 50e9, 0},
		{"an interval the positive balance covers half of charges the other half to the negative",
			30e9, testFactors, testFactors, 1, 60 * time.Second, 0, 30e9},
		{"a free client accrues the whole interval at the negative factors", 0, testFactors, PriceFactors{TimeFactor: 2}, 1, 10 * time.Second, 0, 20e9},
		{"the capacity factor charges per 1,000,000 units of capacity",
			100e9, PriceFactors{CapacityFactor: 1}, PriceFactors{}, 2e6, 10 * time.Second, 80e9, 0},
		{"zero factors charge nothing", 5e9, PriceFactors{}, PriceFactors{}, 1, time.Hour, 5e9, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &mclock.Simulated{}
			pool := newTestPool(t, nil, clock, 1, tt.cap)
			pool.SetDefaultFactors(tt.posF, tt.negF)
			p := newPeer(1, time.Hour)
			if tt.pos > 0 {
				addBalance(pool, p.node.ID(), int64(tt.pos))
			}
			b := pool.Register(p)
			if tt.cap > 1 {
				if got, err := pool.SetCapacity(p.node, tt.cap, 0, false); err != nil || got != tt.cap {
					t.Fatalf("SetCapacity = %d, %v", got, err)
				}
			}
			clock.Run(tt.active)
			pos, neg := b.GetBalance()
			if pos != tt.wantPos || neg != tt.wantNeg {
				t.Fatalf("balance (%d, %d), want (%d, %d)", pos, neg, tt.wantPos, tt.wantNeg)
			}
		})
	}
}

func TestRequestServedChargesRequestCost(t *testing.T) {
	tests := []struct {
		name             string
		pos              uint64
		posF, negF       PriceFactors
		cost             uint64
		wantPos, wantNeg uint64
	}{
		{"a covered request spends cost times the positive request factor",
			1000, PriceFactors{RequestFactor: 2}, PriceFactors{RequestFactor: 1}, 100, 800, 0},
		{"the uncovered fraction goes to the negative balance at its own factor",
			100, PriceFactors{RequestFactor: 2}, PriceFactors{RequestFactor: 3}, 100, 0, 150},
		{"a free client pays the negative request factor", 0, PriceFactors{RequestFactor: 2}, PriceFactors{RequestFactor: 3}, 100, 0, 300},
		// Fix: the original charged nothing at all here.
		{"a positive balance with request factor 0 sends the whole cost to the negative side",
			1000, PriceFactors{RequestFactor: 0}, PriceFactors{RequestFactor: 1}, 100, 1000, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &mclock.Simulated{}
			pool := newTestPool(t, nil, clock, 0, 0) // nobody active: no time cost
			pool.SetDefaultFactors(tt.posF, tt.negF)
			p := newPeer(1, time.Hour)
			if tt.pos > 0 {
				addBalance(pool, p.node.ID(), int64(tt.pos))
			}
			b := pool.Register(p)
			if got := b.RequestServed(tt.cost); got != tt.wantPos {
				t.Errorf("RequestServed returned %d, want %d", got, tt.wantPos)
			}
			if pos, neg := b.GetBalance(); pos != tt.wantPos || neg != tt.wantNeg {
				t.Fatalf("balance (%d, %d), want (%d, %d)", pos, neg, tt.wantPos, tt.wantNeg)
			}
		})
	}
}

func TestBalanceOperationErrors(t *testing.T) {
	tests := []struct {
		name    string
		start   uint64
		freeID  string
		op      func(AtomicBalanceOperator) error
		wantErr error
		wantPos uint64
		wantNeg uint64
	}{
		{"AddBalance that would overflow MaxInt64 fails and changes nothing", math.MaxInt64 - 10, "a",
			func(op AtomicBalanceOperator) error { _, _, err := op.AddBalance(11); return err }, ErrBalanceOverflow, math.MaxInt64 - 10, 0},
		{"AddBalance up to exactly MaxInt64 succeeds", 0, "a",
			func(op AtomicBalanceOperator) error { _, _, err := op.AddBalance(math.MaxInt64); return err }, nil, math.MaxInt64, 0},
		{"subtracting more than the balance leaves zero", 100, "a",
			func(op AtomicBalanceOperator) error { _, _, err := op.AddBalance(-1000); return err }, nil, 0, 0},
		// Fix: the original accepted values over the cap.
		{"SetBalance over MaxInt64 fails and changes nothing", 100, "a",
			func(op AtomicBalanceOperator) error { return op.SetBalance(math.MaxInt64+1, 0) }, ErrBalanceOverflow, 100, 0},
		{"SetBalance with a negative balance over MaxInt64 fails", 100, "a",
			func(op AtomicBalanceOperator) error { return op.SetBalance(5, math.MaxInt64+1) }, ErrBalanceOverflow, 100, 0},
		{"SetBalance with a negative balance for the empty free ID fails", 100, "",
			func(op AtomicBalanceOperator) error { return op.SetBalance(5, 7) }, ErrNoFreeID, 100, 0},
		{"SetBalance stores both values exactly", 100, "a",
			func(op AtomicBalanceOperator) error { return op.SetBalance(5, 7) }, nil, 5, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newTestPool(t, nil, &mclock.Simulated{}, 1, 1)
			id := nodeID(3)
			if tt.start > 0 {
				if err := addBalance(pool, id, int64(tt.start)); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			pool.BalanceOperation(id, tt.freeID, func(op AtomicBalanceOperator) { err = tt.op(op) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if pos, neg := balanceOf(pool, id, tt.freeID); pos != tt.wantPos || neg != tt.wantNeg {
				t.Fatalf("balance (%d, %d), want (%d, %d)", pos, neg, tt.wantPos, tt.wantNeg)
			}
		})
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		name string
		b    balSnap
		cap  uint64
		want int64
	}{
		{"a priority client's priority is its balance per capacity", balSnap{pos: 1000}, 10, 100},
		{"a tiny positive balance still has priority 1", balSnap{pos: 5, neg: 1e9}, 10, 1},
		{"a free client's priority is minus its negative balance", balSnap{neg: 300}, 10, -300},
		{"a new free client has priority 0", balSnap{}, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.priority(tt.cap); got != tt.want {
				t.Fatalf("priority %d, want %d", got, tt.want)
			}
		})
	}
}

func TestEstimatePriority(t *testing.T) {
	tests := []struct {
		name         string
		b            balSnap
		cap          uint64
		add          int64
		future, bias time.Duration
		want         int64
	}{
		{"bias is paid from the positive balance", balSnap{pos: 300e9, posF: testFactors, negF: testFactors}, 1, 0, 0, 180 * time.Second, 120e9},
		{"bias the positive balance cannot cover accrues negative balance", balSnap{pos: 2e9, posF: testFactors, negF: testFactors}, 1, 0, 0, 180 * time.Second, -178e9},
		{"future costs twice the average request rate", balSnap{pos: 100e9, posF: PriceFactors{RequestFactor: 1}, reqRate: 1}, 1, 0, 10 * time.Second, 0, 80e9},
		{"added tokens count", balSnap{posF: testFactors, negF: testFactors}, 1, 300e9, 0, 180 * time.Second, 120e9},
		// Fix: the original clamped against the balance without the added tokens
		// (giving -1 here), which made "what if I add N tokens" queries useless.
		{"with no cost the estimate is just below the priority including added tokens", balSnap{}, 1, 1000, 0, time.Minute, 999},
		{"with no cost the estimate is strictly below the actual priority", balSnap{neg: 50}, 1, 0, 0, time.Minute, -51},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.estimate(tt.cap, tt.add, tt.future, tt.bias); got != tt.want {
				t.Fatalf("estimate %d, want %d", got, tt.want)
			}
		})
	}
}

func TestClientPoolAddBalanceAfterStopReturnsErrStopped(t *testing.T) {
	pool := NewClientPool(nil, 1, 0, &mclock.Simulated{}, nil)
	pool.Stop()
	if _, _, err := pool.AddBalance(nodeID(1), "", 1); !errors.Is(err, ErrStopped) {
		t.Fatalf("AddBalance after Stop returned %v, want ErrStopped", err)
	}
}

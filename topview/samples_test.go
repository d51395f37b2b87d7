package topview

import (
	"testing"
	"time"
)

func TestSpendIsPositiveBalanceUsedPlusNegativeBalanceAccruedPerSecond(t *testing.T) {
	var m SpendMeter
	paid := Client{ID: "aa", PosBalance: 10_000_000, Connected: 10 * time.Second}
	free := Client{ID: "bb", NegBalance: 500, Connected: 3 * time.Second}
	first := []Client{paid, free}
	m.Update(first)
	for _, c := range first {
		if c.SpendKnown {
			t.Errorf("client %s has a rate after one sample", c.ID)
		}
	}

	// Two seconds later on the node's clock: the paid client spent 4M, the
	// free one accrued 1000 of debt.
	paid.PosBalance, paid.Connected = 6_000_000, 12*time.Second
	free.NegBalance, free.Connected = 1500, 5*time.Second
	second := []Client{paid, free}
	m.Update(second)
	want := map[string]float64{"aa": 2_000_000, "bb": 500}
	for _, c := range second {
		if !c.SpendKnown || c.Spend != want[c.ID] {
			t.Errorf("client %s: spend %v (known %v), want %v", c.ID, c.Spend, c.SpendKnown, want[c.ID])
		}
	}

	// A top-up shows as a negative spend; a reconnect (connection time went
	// back) has no rate; a client gone is forgotten.
	paid.PosBalance, paid.Connected = 106_000_000, 13*time.Second
	free.NegBalance, free.Connected = 0, time.Second
	third := []Client{paid, free}
	m.Update(third)
	if !third[0].SpendKnown || third[0].Spend != -100_000_000 {
		t.Errorf("top-up: spend %v (known %v), want -1e8", third[0].Spend, third[0].SpendKnown)
	}
	if third[1].SpendKnown {
		t.Errorf("reconnected client has a rate %v", third[1].Spend)
	}
	m.Update([]Client{free})
	paid.Connected = 20 * time.Second
	back := []Client{paid}
	m.Update(back)
	if back[0].SpendKnown {
		t.Error("a client that left and came back kept its old sample")
	}
}

func TestTheEventLogKeepsTheLatestEventsOldestFirst(t *testing.T) {
	l := EventLog{Max: 3}
	for i, typ := range []string{"a", "b", "c", "d", "e"} {
		l.Add(Event{Type: typ, Capacity: uint64(i)})
	}
	got := l.Events()
	if len(got) != 3 || got[0].Type != "c" || got[2].Type != "e" {
		t.Fatalf("kept %+v, want c, d, e", got)
	}
	got[0].Type = "changed"
	if l.Events()[0].Type != "c" {
		t.Error("Events returned the log's own slice")
	}
	var def EventLog
	for i := 0; i < DefaultEventLogSize+5; i++ {
		def.Add(Event{})
	}
	if n := len(def.Events()); n != DefaultEventLogSize {
		t.Errorf("zero-value log kept %d events, want %d", n, DefaultEventLogSize)
	}
}

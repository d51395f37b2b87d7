package topview

import (
	"strings"
	"testing"
	"time"
)

// fullByCount is a devnet-like node: every active slot taken while most of
// the capacity is unused, one client waiting in a full waiting room.
func fullByCount() Snapshot {
	at := time.Date(2026, 12, 4, 7, 51, 2, 0, time.UTC)
	return Snapshot{
		Source: "/tmp/vflux-devnet-4242.ipc",
		Time:   at,
		Server: Server{
			MinCap: 1000, MaxCount: 4, MaxCap: 40000, MaxInactive: 1,
			ActiveCount: 4, ActiveCap: 6000, InactiveCount: 1, TotalTokens: 199000000,
		},
		Clients: []Client{
			{ID: "f00dbabe" + strings.Repeat("0", 56), Capacity: 0, NegBalance: 3500000, Connected: 4 * time.Second},
			{ID: "0x9A0C11EE" + strings.Repeat("1", 56), Capacity: 1000, NegBalance: 21000000, Connected: 65 * time.Second, Spend: 1000000, SpendKnown: true},
			{ID: "3f2a91c0" + strings.Repeat("2", 56), Capacity: 2000, PosBalance: 99000000, Connected: 2*time.Hour + 3*time.Minute, Spend: 2001000, SpendKnown: true},
			{ID: "11aa22bb" + strings.Repeat("3", 56), Capacity: 1000, NegBalance: 999, Connected: 50 * time.Hour, Spend: -12.4, SpendKnown: true},
			{ID: "3f2a91bf" + strings.Repeat("4", 56), Capacity: 2000, PosBalance: 100000000, Connected: 7 * time.Second},
		},
		Events: []Event{
			{Time: at.Add(-3 * time.Second), Type: "connected", ID: "f00dbabe" + strings.Repeat("0", 56)},
			{Time: at.Add(-2 * time.Second), Type: "capacityChanged", ID: "3f2a91c0" + strings.Repeat("2", 56), Capacity: 2000},
			{Time: at.Add(-2 * time.Second), Type: "balanceChanged", ID: "3f2a91bf" + strings.Repeat("4", 56), Capacity: 2000, Balance: &[2]uint64{0, 100000000}},
			{Time: at.Add(-1 * time.Second), Type: "disconnected", ID: "77777777" + strings.Repeat("5", 56), Reason: "evicted by priority"},
		},
	}
}

// The golden frame: the header says the node is full by count although most
// capacity is unused, the client table is aligned (text left, numbers right),
// active clients come first by capacity (ties by ID), IDs are short, and
// events show their capacity, balance change or reason.
const fullByCountFrame = `vflux top  /tmp/vflux-devnet-4242.ipc  2026-12-04 07:51:02 UTC
limits   4 active slots, capacity 40000, minCap 1000, up to 1 waiting
load     active 4/4, capacity 6000/40000, waiting 1/1, 199000000 tokens held
status   FULL by count: 4/4 active slots taken, 34000 capacity unused (no slot to give it)
         a newcomer waits, or is turned away, unless it out-ranks an active client
         waiting room full: of a newcomer and the waiting clients, the lowest-priority one is dropped

clients  5 connected
  ID        STATE     CAPACITY  POS BALANCE  NEG BALANCE  SPEND/S  CONNECTED
  3f2a91bf  active        2000    100000000            0        -         7s
  3f2a91c0  active        2000     99000000            0    2.00M      2h03m
  11aa22bb  active        1000            0          999      -12      2d02h
  9a0c11ee  active        1000            0     21000000    1.00M      1m05s
  f00dbabe  inactive         0            0      3500000        -         4s

events   latest last
  07:50:59  f00dbabe  connected
  07:51:00  3f2a91c0  capacityChanged   capacity 2000
  07:51:00  3f2a91bf  balanceChanged    balance 0 -> 100000000
  07:51:01  77777777  disconnected      reason: evicted by priority
`

func TestTheViewAlignsColumnsSortsActiveByCapacityAndSaysFullByCount(t *testing.T) {
	if got := Render(fullByCount()); got != fullByCountFrame {
		t.Errorf("frame differs from the golden one.\ngot:\n%s\nwant:\n%s", got, fullByCountFrame)
	}
}

func TestTheViewIsTheSameWhateverOrderTheClientsComeIn(t *testing.T) {
	s := fullByCount()
	for i, j := 0, len(s.Clients)-1; i < j; i, j = i+1, j-1 {
		s.Clients[i], s.Clients[j] = s.Clients[j], s.Clients[i]
	}
	if got := Render(s); got != fullByCountFrame {
		t.Errorf("reversed input renders differently:\n%s", got)
	}
}

func TestTheStatusLineTellsFullByCapacityFromSpareRoom(t *testing.T) {
	tests := []struct {
		name string
		srv  Server
		want []string
		not  []string
	}{
		{
			name: "capacity used up while slots are free",
			srv:  Server{MinCap: 1000, MaxCount: 10, MaxCap: 5000, ActiveCount: 3, ActiveCap: 4500},
			want: []string{"status   FULL by capacity: 4500/5000 used, less than minCap 1000 left\n", "a newcomer waits, or is turned away"},
			not:  []string{"FULL by count", "room for"},
		},
		{
			name: "room limited by capacity",
			srv:  Server{MinCap: 1000, MaxCount: 10, MaxCap: 5000, ActiveCount: 3, ActiveCap: 3000, MaxInactive: 9},
			want: []string{"status   room for 2 more active client(s) at minCap\n", "waiting 0/9"},
			not:  []string{"FULL", "turned away", "waiting room full"},
		},
		{
			name: "room limited by slots",
			srv:  Server{MinCap: 1000, MaxCount: 4, MaxCap: 40000, ActiveCount: 1, ActiveCap: 2000},
			want: []string{"status   room for 3 more active client(s) at minCap\n", "waiting 0,"},
			not:  []string{"FULL", "up to"},
		},
		{
			name: "full by count with no capacity to spare",
			srv:  Server{MinCap: 1000, MaxCount: 2, MaxCap: 2000, ActiveCount: 2, ActiveCap: 2000, InactiveCount: 1, MaxInactive: 3},
			want: []string{"status   FULL by count: 2/2 active slots taken\n", "waiting 1/3"},
			not:  []string{"unused", "waiting room full"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(Snapshot{Server: tt.srv})
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("frame lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("frame says %q:\n%s", n, got)
				}
			}
		})
	}
}

func TestAnEmptyNodeAndMissingEventsAreSaidPlainly(t *testing.T) {
	got := Render(Snapshot{Server: Server{MinCap: 1, MaxCount: 1, MaxCap: 1}, EventsNote: "events need an IPC or WebSocket endpoint"})
	for _, w := range []string{"clients  0 connected\n  (none)\n", "  (events need an IPC or WebSocket endpoint)\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("frame lacks %q:\n%s", w, got)
		}
	}
	if got := Render(Snapshot{}); !strings.Contains(got, "  (none yet)\n") {
		t.Errorf("no events and no note should say (none yet):\n%s", got)
	}
	s := fullByCount()
	s.Server.ConnectedCount = 1200
	s.EventsNote = "event subscription ended: closed by the node"
	got = Render(s)
	for _, w := range []string{"clients  1200 connected, 5 shown\n", "reason: evicted by priority\n  (event subscription ended: closed by the node)\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("frame lacks %q:\n%s", w, got)
		}
	}
}

func TestShortIDIsThePrefixOfThePlainHexID(t *testing.T) {
	for in, want := range map[string]string{
		"3f2a91c0" + strings.Repeat("ab", 28):  "3f2a91c0",
		"0x3F2A91C0" + strings.Repeat("0", 56): "3f2a91c0",
		"abc":                                  "abc",
	} {
		if got := ShortID(in); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNumbersAndDurationsAreCompact(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 12.4: "12", 999.4: "999", 999.6: "1.00k", 1500: "1.50k", 99940: "99.9k",
		99960: "100k", 2001000: "2.00M", 1e12: "1.00T", -5e9: "-5.00G",
	} {
		if got := compact(v); got != want {
			t.Errorf("compact(%v) = %q, want %q", v, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m01s",
		time.Hour + 59*time.Second: "1h00m", 49 * time.Hour: "2d01h",
	} {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
}

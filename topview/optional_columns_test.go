package topview

import (
	"strings"
	"testing"
	"time"
)

// devnetLike is a devnet frame: clients with names and an eth column, and
// events naming the clients they are about.
func devnetLike() Snapshot {
	at := time.Date(2026, 12, 4, 8, 10, 0, 0, time.UTC)
	paid := "3f2a91c0" + strings.Repeat("2", 56)
	free := "f00dbabe" + strings.Repeat("0", 56)
	gone := "77777777" + strings.Repeat("5", 56)
	return Snapshot{
		Source: "devnet",
		Time:   at,
		Server: Server{MinCap: 1000, MaxCount: 2, MaxCap: 20000, MaxInactive: 1, ActiveCount: 1, ActiveCap: 2000, InactiveCount: 1, TotalTokens: 99000000},
		Clients: []Client{
			{ID: free, Name: "free-2", NegBalance: 3500000, Connected: 4 * time.Second, Served: 0},
			{ID: paid, Name: "paid-1", Capacity: 2000, PosBalance: 99000000, Connected: 12 * time.Second, Spend: 2001000, SpendKnown: true, Served: 1234.56},
		},
		Events: []Event{
			{Time: at.Add(-2 * time.Second), Type: "capacityChanged", ID: paid, Name: "paid-1", Capacity: 2000},
			{Time: at.Add(-time.Second), Type: "disconnected", ID: gone, Name: "free-10", Reason: "inactive allowance ended"},
			{Time: at, Type: "connected", ID: "0badc0de"},
		},
		ServedHeader: "ETH KIB/S",
	}
}

// The golden devnet frame: a NAME column right of the ID, the served column
// right of the capacity (one decimal), and event lines with a name column as
// wide as the longest name (blank for an event without one).
const devnetLikeFrame = `vflux top  devnet  2026-12-04 08:10:00 UTC
limits   2 active slots, capacity 20000, minCap 1000, up to 1 waiting
load     active 1/2, capacity 2000/20000, waiting 1/1, 99000000 tokens held
status   room for 1 more active client(s) at minCap
         waiting room full: of a newcomer and the waiting clients, the lowest-priority one is dropped

clients  2 connected
  ID        NAME    STATE     CAPACITY  ETH KIB/S  POS BALANCE  NEG BALANCE  SPEND/S  CONNECTED
  3f2a91c0  paid-1  active        2000     1234.6     99000000            0    2.00M        12s
  f00dbabe  free-2  inactive         0        0.0            0      3500000        -         4s

events   latest last
  08:09:58  3f2a91c0  paid-1   capacityChanged   capacity 2000
  08:09:59  77777777  free-10  disconnected      reason: inactive allowance ended
  08:10:00  0badc0de           connected
`

func TestNamesAndAServedColumnAppearWhenTheSnapshotHasThem(t *testing.T) {
	if got := Render(devnetLike()); got != devnetLikeFrame {
		t.Errorf("frame differs from the golden one.\ngot:\n%s\nwant:\n%s", got, devnetLikeFrame)
	}
}

func TestEachOptionalColumnIsShownOnItsOwn(t *testing.T) {
	s := devnetLike()
	s.ServedHeader = ""
	got := Render(s)
	if !strings.Contains(got, "  ID        NAME    STATE     CAPACITY  POS BALANCE") || strings.Contains(got, "1234") {
		t.Errorf("without a ServedHeader the served column shows:\n%s", got)
	}

	s = devnetLike()
	for i := range s.Clients {
		s.Clients[i].Name = ""
	}
	for i := range s.Events {
		s.Events[i].Name = ""
	}
	got = Render(s)
	for _, w := range []string{
		"  ID        STATE     CAPACITY  ETH KIB/S  POS BALANCE",
		"  3f2a91c0  active        2000     1234.6",
		"  08:09:59  77777777  disconnected      reason: inactive allowance ended\n",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("without names the frame lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "NAME") {
		t.Errorf("a NAME column without names:\n%s", got)
	}
}

func TestFramesRedrawInPlaceOnATerminalAndAreSeparatedByABlankLineElsewhere(t *testing.T) {
	frame := "vflux top\n"
	for _, tt := range []struct {
		inPlace, first bool
		want           string
	}{
		{true, true, "\x1b[H\x1b[2J" + frame},
		{true, false, "\x1b[H\x1b[2J" + frame},
		{false, true, frame},
		{false, false, "\n" + frame},
	} {
		if got := Framed(frame, tt.inPlace, tt.first); got != tt.want {
			t.Errorf("Framed(inPlace %v, first %v) = %q, want %q", tt.inPlace, tt.first, got, tt.want)
		}
	}
}

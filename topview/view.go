package topview

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Server is the node's limits and load, as vflux_serverInfo reports them.
type Server struct {
	MinCap        uint64 // capacity every active client holds at least
	MaxCount      uint64 // active client slots
	MaxCap        uint64 // total capacity shared by active clients
	MaxInactive   int    // most clients kept waiting without capacity (0 = not known)
	ActiveCount   uint64
	ActiveCap     uint64
	InactiveCount int
	// ConnectedCount is the number of connected clients when more are
	// connected than Snapshot.Clients lists (0 = they are all listed).
	ConnectedCount int
	TotalTokens    uint64 // sum of all positive balances
}

// Client is one connected client.
type Client struct {
	ID         string        // node ID, 64 hex digits
	Capacity   uint64        // 0 while it waits without capacity (inactive)
	PosBalance uint64        // tokens
	NegBalance uint64        // tokens
	Connected  time.Duration // how long it has been connected
	// Spend is the tokens per second it spent between the last two samples:
	// positive balance used up plus negative balance accrued. Negative when
	// a balance shrank on its own (expiration) or grew (a top-up). Valid
	// only when SpendKnown.
	Spend      float64
	SpendKnown bool
	// Name is a label the collector knows the client by (the devnet's
	// "paid-1"); a NAME column next to the ID shows it when any client has
	// one.
	Name string
	// Served is the client's figure in the Snapshot's ServedHeader column
	// (the devnet's eth download in KiB/s), next to the capacity; not shown
	// without a ServedHeader.
	Served float64
}

// Active reports whether the client holds capacity.
func (c Client) Active() bool { return c.Capacity > 0 }

// Event is one pool event.
type Event struct {
	Time     time.Time
	Type     string // connected, activated, capacityChanged, deactivated, disconnected, ...
	ID       string // node ID
	Name     string // the client's label, as Client.Name ("" = none)
	Capacity uint64
	Reason   string // why, where the event says ("" = it does not)
	// Balance is [old, new] positive balance, on balanceChanged (nil: the
	// event has none).
	Balance *[2]uint64
}

// Snapshot is everything one frame shows.
type Snapshot struct {
	Source  string    // where the data comes from (an RPC endpoint, "devnet")
	Time    time.Time // when it was taken; shown in its own location
	Server  Server
	Clients []Client // any order: Render sorts them
	Events  []Event  // oldest first
	// EventsNote says, below the events, why there are no (more) events:
	// HTTP has no subscriptions, or the subscription ended.
	EventsNote string
	// ServedHeader heads a column of every client's Served figure, e.g.
	// "ETH KIB/S" ("" = no such column).
	ServedHeader string
}

// shortIDLen is the number of hex digits of a short ID: enough to tell a
// node's clients apart (a clash needs about 65,000 clients), short enough
// for a narrow column.
const shortIDLen = 8

// ShortID is the first 8 hex digits of a node ID (without "0x"), a prefix of
// the full ID that `vflux clients` and the RPC print.
func ShortID(id string) string {
	id = plainID(id)
	if len(id) > shortIDLen {
		return id[:shortIDLen]
	}
	return id
}

// plainID is a node ID in lower case without "0x", as the RPC prints it.
func plainID(id string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(id, "0x"), "0X"))
}

// clearHome is the escape sequence that clears a terminal and moves the
// cursor to its top left.
const clearHome = "\x1b[H\x1b[2J"

// Framed prepares a rendered frame for its output. On a terminal (inPlace)
// it starts with the escape sequence that clears the screen and moves the
// cursor home, so every frame redraws the last; into a pipe or file each
// frame but the first starts with a blank line, and there are no escape
// codes.
func Framed(frame string, inPlace, first bool) string {
	switch {
	case inPlace:
		return clearHome + frame
	case !first:
		return "\n" + frame
	}
	return frame
}

// Render draws the snapshot as plain text lines, each ending in a newline.
func Render(s Snapshot) string {
	var b strings.Builder
	header := "vflux top"
	if s.Source != "" {
		header += "  " + s.Source
	}
	if !s.Time.IsZero() {
		header += "  " + s.Time.Format("2006-01-02 15:04:05 MST")
	}
	b.WriteString(header + "\n")
	renderServer(&b, s.Server)
	b.WriteString("\n")
	renderClients(&b, s.Clients, s.Server.ConnectedCount, s.ServedHeader)
	b.WriteString("\n")
	renderEvents(&b, s.Events, s.EventsNote)
	return b.String()
}

func renderServer(b *strings.Builder, srv Server) {
	waitRoom := ""
	if srv.MaxInactive > 0 {
		waitRoom = fmt.Sprintf(", up to %d waiting", srv.MaxInactive)
	}
	fmt.Fprintf(b, "limits   %d active slots, capacity %d, minCap %d%s\n", srv.MaxCount, srv.MaxCap, srv.MinCap, waitRoom)
	waiting := fmt.Sprint(srv.InactiveCount)
	if srv.MaxInactive > 0 {
		waiting += fmt.Sprintf("/%d", srv.MaxInactive)
	}
	fmt.Fprintf(b, "load     active %d/%d, capacity %d/%d, waiting %s, %d tokens held\n",
		srv.ActiveCount, srv.MaxCount, srv.ActiveCap, srv.MaxCap, waiting, srv.TotalTokens)
	for i, line := range admission(srv) {
		label := "status"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(b, "%-8s %s\n", label, line)
	}
}

// admission says whether a newcomer can get capacity now. The count and the
// capacity limit are checked separately: capacity left over is no use to a
// newcomer when every active slot is taken.
func admission(srv Server) []string {
	const unlessOutranks = "a newcomer waits, or is turned away, unless it out-ranks an active client"
	var lines []string
	var capLeft uint64
	if srv.MaxCap > srv.ActiveCap {
		capLeft = srv.MaxCap - srv.ActiveCap
	}
	switch {
	case srv.ActiveCount >= srv.MaxCount:
		unused := ""
		if capLeft > 0 {
			unused = fmt.Sprintf(", %d capacity unused (no slot to give it)", capLeft)
		}
		lines = append(lines, fmt.Sprintf("FULL by count: %d/%d active slots taken%s", srv.ActiveCount, srv.MaxCount, unused), unlessOutranks)
	case capLeft == 0 || capLeft < srv.MinCap:
		lines = append(lines, fmt.Sprintf("FULL by capacity: %d/%d used, less than minCap %d left", srv.ActiveCap, srv.MaxCap, srv.MinCap), unlessOutranks)
	default:
		room := srv.MaxCount - srv.ActiveCount
		if srv.MinCap > 0 && capLeft/srv.MinCap < room {
			room = capLeft / srv.MinCap
		}
		lines = append(lines, fmt.Sprintf("room for %d more active client(s) at minCap", room))
	}
	if srv.MaxInactive > 0 && srv.InactiveCount >= srv.MaxInactive {
		lines = append(lines, "waiting room full: of a newcomer and the waiting clients, the lowest-priority one is dropped")
	}
	return lines
}

// sortClients orders active clients first, by capacity descending, then the
// waiting ones; node ID breaks ties so the order is stable between frames.
func sortClients(clients []Client) []Client {
	out := append([]Client(nil), clients...)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Active() != b.Active() {
			return a.Active()
		}
		if a.Capacity != b.Capacity {
			return a.Capacity > b.Capacity
		}
		return plainID(a.ID) < plainID(b.ID)
	})
	return out
}

func renderClients(b *strings.Builder, clients []Client, connected int, servedHeader string) {
	if connected > len(clients) {
		fmt.Fprintf(b, "clients  %d connected, %d shown\n", connected, len(clients))
	} else {
		fmt.Fprintf(b, "clients  %d connected\n", len(clients))
	}
	if len(clients) == 0 {
		b.WriteString("  (none)\n")
		return
	}
	named := false
	for _, c := range clients {
		named = named || c.Name != ""
	}
	var t table
	t.column("ID", false)
	if named {
		t.column("NAME", false)
	}
	t.column("STATE", false)
	t.column("CAPACITY", true)
	if servedHeader != "" {
		t.column(servedHeader, true)
	}
	for _, h := range []string{"POS BALANCE", "NEG BALANCE", "SPEND/S", "CONNECTED"} {
		t.column(h, true)
	}
	for _, c := range sortClients(clients) {
		state := "inactive"
		if c.Active() {
			state = "active"
		}
		spend := "-"
		if c.SpendKnown {
			spend = compact(c.Spend)
		}
		row := []string{ShortID(c.ID)}
		if named {
			row = append(row, c.Name)
		}
		row = append(row, state, fmt.Sprint(c.Capacity))
		if servedHeader != "" {
			row = append(row, fmt.Sprintf("%.1f", c.Served))
		}
		t.rows = append(t.rows, append(row, fmt.Sprint(c.PosBalance), fmt.Sprint(c.NegBalance), spend, age(c.Connected)))
	}
	t.write(b)
}

// typeWidth fits the longest event type, "balanceExhausted".
const typeWidth = 16

func renderEvents(b *strings.Builder, events []Event, note string) {
	b.WriteString("events   latest last\n")
	if len(events) == 0 && note == "" {
		b.WriteString("  (none yet)\n")
		return
	}
	nameWidth := 0
	for _, ev := range events {
		nameWidth = max(nameWidth, len(ev.Name))
	}
	for _, ev := range events {
		who := fmt.Sprintf("%-8s", ShortID(ev.ID))
		if nameWidth > 0 {
			who += fmt.Sprintf("  %-*s", nameWidth, ev.Name)
		}
		var details []string
		if ev.Type == "activated" || ev.Type == "capacityChanged" {
			details = append(details, fmt.Sprintf("capacity %d", ev.Capacity))
		}
		if ev.Balance != nil {
			details = append(details, fmt.Sprintf("balance %d -> %d", ev.Balance[0], ev.Balance[1]))
		}
		if ev.Reason != "" {
			details = append(details, "reason: "+ev.Reason)
		}
		line := fmt.Sprintf("  %s  %s  %-*s  %s", ev.Time.Format("15:04:05"), who, typeWidth, ev.Type, strings.Join(details, ", "))
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	if note != "" {
		b.WriteString("  (" + note + ")\n")
	}
}

// table writes rows in columns two spaces apart, each column as wide as its
// widest cell, text left-aligned and numbers right-aligned.
type table struct {
	head       []string
	rightAlign []bool
	rows       [][]string
}

// column adds a column headed head.
func (t *table) column(head string, rightAlign bool) {
	t.head = append(t.head, head)
	t.rightAlign = append(t.rightAlign, rightAlign)
}

func (t table) write(b *strings.Builder) {
	widths := make([]int, len(t.head))
	for _, row := range append([][]string{t.head}, t.rows...) {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	for _, row := range append([][]string{t.head}, t.rows...) {
		var line strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-len(cell))
			line.WriteString("  ") // an indent before the first column, a gap before the others
			if t.rightAlign[i] {
				line.WriteString(pad + cell)
			} else {
				line.WriteString(cell + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// compact writes v with three significant digits and an SI suffix (k, M, G,
// T, P, E), e.g. 1.00M for 1,000,000; below 1000 as a whole number.
func compact(v float64) string {
	const suffixes = "kMGTPE"
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if v < 999.5 {
		return fmt.Sprintf("%s%.0f", sign, v)
	}
	unit := -1
	for v >= 999.5 && unit < len(suffixes)-1 {
		v /= 1000
		unit++
	}
	switch {
	case v < 9.995:
		return fmt.Sprintf("%s%.2f%c", sign, v, suffixes[unit])
	case v < 99.95:
		return fmt.Sprintf("%s%.1f%c", sign, v, suffixes[unit])
	default:
		return fmt.Sprintf("%s%.0f%c", sign, v, suffixes[unit])
	}
}

// age writes a duration in its two largest units: 42s, 3m05s, 2h03m, 4d07h.
func age(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
	}
}

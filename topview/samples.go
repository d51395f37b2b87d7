package topview

import "time"

// SpendMeter derives each client's spending rate from successive samples of
// its balances. The time between two samples is taken from the clients' own
// connection times, which the node measures on its clock, so the delay of
// the RPC round trip does not skew the rate. It is not safe for concurrent
// use.
type SpendMeter struct {
	last map[string]spendSample
}

type spendSample struct {
	pos, neg  uint64
	connected time.Duration
}

// Update sets Spend and SpendKnown of every client from its previous sample
// and remembers the new ones. A client seen for the first time, or connected
// anew since the last sample (its connection time went back), has no rate
// yet. Clients no longer listed are forgotten.
func (m *SpendMeter) Update(clients []Client) {
	next := make(map[string]spendSample, len(clients))
	for i := range clients {
		c := &clients[i]
		c.Spend, c.SpendKnown = 0, false
		if prev, ok := m.last[c.ID]; ok && c.Connected > prev.connected {
			// Balances are below 2^63, so the differences fit an int64 and
			// wrap-around subtraction gives their sign.
			spent := float64(int64(prev.pos-c.PosBalance)) + float64(int64(c.NegBalance-prev.neg))
			c.Spend = spent / (c.Connected - prev.connected).Seconds()
			c.SpendKnown = true
		}
		next[c.ID] = spendSample{pos: c.PosBalance, neg: c.NegBalance, connected: c.Connected}
	}
	m.last = next
}

// DefaultEventLogSize is how many events an EventLog keeps when Max is 0.
const DefaultEventLogSize = 10

// EventLog keeps the last Max events. It is not safe for concurrent use.
type EventLog struct {
	Max    int // 0 = DefaultEventLogSize
	events []Event
}

// Add appends ev, dropping the oldest event when the log is full.
func (l *EventLog) Add(ev Event) {
	limit := l.Max
	if limit <= 0 {
		limit = DefaultEventLogSize
	}
	l.events = append(l.events, ev)
	if over := len(l.events) - limit; over > 0 {
		l.events = append(l.events[:0], l.events[over:]...)
	}
}

// Events returns a copy of the kept events, oldest first.
func (l *EventLog) Events() []Event {
	return append([]Event(nil), l.events...)
}

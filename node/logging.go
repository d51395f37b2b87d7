package node

import (
	"fmt"
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/topview"
)

// statusInterval is how often a serving node logs its status line.
const statusInterval = time.Minute

// What the operator reads (INFO): clients connecting, getting capacity,
// losing it and leaving, with the client's short ID (the prefix of the node ID
// `vflux clients` prints) and the pool's reason (clientpool.Reason, the
// event's); balance changes (old -> new), from the pool's events, so every
// top-up is told whoever made it; the operator's own settings changes over
// RPC; and a status line every statusInterval. Everything else is DEBUG, as
// are the deactivation that only precedes a leaving client's disconnect and
// the pool's refusals by the per-address bound (the pool logs those itself,
// a line every few seconds however many there are).

// clientStory is what the log loop remembers of a connected client. Times
// are the events' pool-clock times.
type clientStory struct {
	capacity uint64 // current capacity, 0 while inactive
	since    mclock.AbsTime
}

// startLogLoop subscribes to the pool's events before it returns, so the log
// misses no event decided after Start (a client connecting at once), and
// runs logLoop on its own goroutine.
func (s *Service) startLogLoop(done chan struct{}) {
	events := make(chan clientpool.Event, eventBuffer)
	sub := s.pool.SubscribeEvents(events)
	go s.logLoop(events, sub, done)
}

// logLoop logs pool events and the status line until the service stops.
func (s *Service) logLoop(events <-chan clientpool.Event, sub event.Subscription, done chan struct{}) {
	defer close(done)
	defer sub.Unsubscribe()
	clock := s.clients.flows.clock // the service's clock
	stories := make(map[enode.ID]*clientStory)
	last := s.requestCounts()
	timer := clock.NewTimer(statusInterval)
	defer timer.Stop()
	s.announceStatusTimer()
	for {
		select {
		case ev := <-events:
			s.logEvent(ev, stories)
		case <-timer.C():
			now := s.requestCounts()
			s.logStatus(now.sub(last))
			last = now
			timer.Reset(statusInterval)
			s.announceStatusTimer()
		case <-s.quit:
			return
		case <-sub.Err():
			return
		}
	}
}

// announceStatusTimer tells a test that the status timer is armed.
func (s *Service) announceStatusTimer() {
	if s.statusArmed != nil {
		select {
		case s.statusArmed <- struct{}{}:
		case <-s.quit:
		}
	}
}

// logEvent logs one pool event and updates the client's story.
func (s *Service) logEvent(ev clientpool.Event, stories map[enode.ID]*clientStory) {
	id := topview.ShortID(ev.ID.String()) // the form vflux top and the devnet show
	st := stories[ev.ID]
	if st == nil {
		st = &clientStory{since: ev.Time}
		if ev.Type == clientpool.EventConnected {
			stories[ev.ID] = st
		}
	}
	switch {
	case ev.Type == clientpool.EventConnected:
		s.log.Info("Client connected", "client", id)
	case ev.Type == clientpool.EventActivated:
		st.capacity = ev.Capacity
		s.log.Info("Client activated", "client", id, "capacity", ev.Capacity)
	case ev.Type == clientpool.EventCapacityChanged:
		old := st.capacity
		st.capacity = ev.Capacity
		s.log.Info("Client capacity changed", "client", id, "capacity", fmt.Sprintf("%d -> %d", old, ev.Capacity))
	case ev.Type == clientpool.EventBalanceExhausted:
		s.log.Info("Client balance ran out", "client", id)
	case ev.Type == clientpool.EventBalanceChanged:
		s.log.Info("Balance changed", "client", id, "balance", fmt.Sprintf("%d -> %d", ev.OldBalance, ev.NewBalance))
	case ev.Type == clientpool.EventDeactivated && ev.Reason == clientpool.ReasonPeerLeft:
		st.capacity = 0
		s.log.Debug("Client deactivated", "client", id, "reason", s.reason(ev))
	case ev.Type == clientpool.EventDeactivated:
		st.capacity = 0
		s.log.Info("Client deactivated", "client", id, "reason", s.reason(ev))
	case ev.Type == clientpool.EventDisconnected && ev.Reason == clientpool.ReasonTooManyFromAddress:
		s.log.Debug("Client refused", "client", id, "reason", s.reason(ev))
	case ev.Type == clientpool.EventDisconnected:
		delete(stories, ev.ID)
		s.log.Info("Client disconnected", "client", id, "reason", s.reason(ev),
			"connected", time.Duration(ev.Time-st.since).Round(time.Second))
	default:
		s.log.Debug("Pool event", "type", ev.Type, "client", id, "capacity", ev.Capacity)
	}
}

// reason is the pool's reason for a deactivation or disconnect, except that
// a peer leaving while the node stops (it closes every peer) left because
// the node stopped: the pool cannot tell the two apart.
func (s *Service) reason(ev clientpool.Event) string {
	if ev.Reason == clientpool.ReasonPeerLeft && s.stopping.Load() {
		return "node stopping"
	}
	return string(ev.Reason)
}

// requestCounts are the request meters' totals at one moment.
type requestCounts struct{ served, dropped int64 }

func (s *Service) requestCounts() requestCounts {
	return requestCounts{served: talkServedMeter.Snapshot().Count(), dropped: talkDroppedMeter.Snapshot().Count()}
}

func (a requestCounts) sub(b requestCounts) requestCounts {
	return requestCounts{served: a.served - b.served, dropped: a.dropped - b.dropped}
}

// logStatus logs the status line: load, waiting clients, capacity used of
// total, whether a newcomer without tokens could be served, and the requests
// of the last interval.
func (s *Service) logStatus(last requestCounts) {
	maxCount, maxCap := s.pool.Limits()
	count, capacity := s.pool.Active()
	full := count >= maxCount || maxCap-capacity < s.cfg.MinCap
	pct := 0.0
	if maxCap > 0 {
		pct = math.Round(float64(capacity)*1000/float64(maxCap)) / 10
	}
	s.log.Info("vflux status",
		"active", fmt.Sprintf("%d/%d", count, maxCount),
		"inactive", s.pool.Inactive(),
		"capacity", fmt.Sprintf("%d/%d (%.1f%%)", capacity, maxCap, pct),
		"full", full,
		"served/min", last.served, "dropped/min", last.dropped,
		"tokens", s.pool.TotalTokenAmount())
}

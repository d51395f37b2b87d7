package node

import (
	"fmt"
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
)

// statusInterval is how often a serving node logs its status line.
const statusInterval = time.Minute

// What the operator reads (INFO): clients connecting, getting capacity,
// losing it and leaving, with the client's short ID (the prefix of the node ID
// `vflux clients` prints) and what the node knows of the reason; the
// operator's own changes over RPC (top-ups, limits, bias, prices); and a
// status line every statusInterval. Everything else is DEBUG.
//
// Pool events carry no reason, so the reason is what the event stream and the
// client registry tell: a disconnect the peer started is marked by the
// registry before the pool publishes it (peerLeft); a client whose balance
// ran out is seen as balanceExhausted before it loses capacity.

// clientStory is what the log loop remembers of a connected client. Times
// are the events' pool-clock times.
type clientStory struct {
	capacity     uint64 // current capacity, 0 while inactive
	exhausted    bool   // its positive balance ran out since it was last active
	since        mclock.AbsTime
	waitingSince mclock.AbsTime // when it last became inactive (or connected)
}

// logLoop logs pool events and the status line until the service stops.
func (s *Service) logLoop(done chan struct{}) {
	defer close(done)
	events := make(chan clientpool.Event, eventBuffer)
	sub := s.pool.SubscribeEvents(events)
	defer sub.Unsubscribe()
	clock := s.clients.clock
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
	id := ev.ID.TerminalString()
	st := stories[ev.ID]
	if st == nil {
		st = &clientStory{since: ev.Time, waitingSince: ev.Time}
		if ev.Type != clientpool.EventDisconnected {
			stories[ev.ID] = st
		}
	}
	switch ev.Type {
	case clientpool.EventConnected:
		st.since, st.waitingSince = ev.Time, ev.Time
		s.log.Info("Client connected", "client", id)
	case clientpool.EventActivated:
		st.capacity, st.exhausted = ev.Capacity, false
		s.log.Info("Client activated", "client", id, "capacity", ev.Capacity)
	case clientpool.EventCapacityChanged:
		old := st.capacity
		st.capacity = ev.Capacity
		s.log.Info("Client capacity changed", "client", id, "capacity", fmt.Sprintf("%d -> %d", old, ev.Capacity))
	case clientpool.EventBalanceExhausted:
		st.exhausted = true
		s.log.Info("Client balance ran out", "client", id)
	case clientpool.EventDeactivated:
		reason := "a client of higher priority took its capacity, or the limits were lowered"
		if st.exhausted {
			reason = "its balance ran out"
		}
		st.capacity, st.waitingSince = 0, ev.Time
		s.log.Info("Client deactivated", "client", id, "reason", reason)
	case clientpool.EventDisconnected:
		delete(stories, ev.ID)
		s.log.Info("Client disconnected", "client", id, "reason", s.disconnectReason(ev, st),
			"connected", time.Duration(ev.Time-st.since).Round(time.Second))
	default:
		s.log.Debug("Pool event", "type", ev.Type, "client", id, "capacity", ev.Capacity)
	}
}

// disconnectReason is what the node knows of why a client left: the peer's
// own doing (marked by the registry), the node stopping, or the pool's drop
// of an active client or of a waiting one, which either waited its whole
// allowance or ranked lowest when a newcomer needed a waiting slot.
func (s *Service) disconnectReason(ev clientpool.Event, st *clientStory) string {
	left := s.clients.takePeerLeft(ev.ID)
	switch {
	case left && s.stopping.Load():
		return "node stopping"
	case left:
		return "peer left"
	case st.capacity != 0:
		return "evicted"
	}
	waited := time.Duration(ev.Time - st.waitingSince)
	prefix := "evicted while waiting: "
	if st.exhausted {
		prefix = "evicted while waiting after its balance ran out: "
	}
	if allowance := s.cfg.InactiveAllowance; waited >= allowance {
		return prefix + fmt.Sprintf("it waited its inactive allowance (%v) without capacity", allowance)
	}
	return prefix + fmt.Sprintf("the waiting slots were full and it ranked lowest (waited %v)", waited.Round(time.Millisecond))
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

// logTopUp tells the operator about a balance change made over RPC.
func (s *Service) logTopUp(id enode.ID, amount int64, oldBal, newBal uint64) {
	s.log.Info("Balance changed", "client", id.TerminalString(), "amount", amount, "balance", fmt.Sprintf("%d -> %d", oldBal, newBal))
}

package client

import (
	"context"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Session holds capacity on the best server available and fails over: when
// the server evicts the client, drops the connection or cannot be reached, it
// connects to the next best one (re-surveying when the list runs out), and
// avoids the lost server for a backoff that doubles from Config.MinBackoff to
// Config.MaxBackoff each time it is lost again.
type Session struct {
	c      *Client
	want   uint64
	events chan Event
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once

	// backoff is owned by the session's goroutine.
	backoff map[enode.ID]*backoff
}

type backoff struct {
	until time.Time
	wait  time.Duration
}

// Hold starts a session asking for capacity (0 = what the server gives) on
// the best server by Config.Policy. It runs until ctx ends or Close.
func (c *Client) Hold(ctx context.Context, capacity uint64) *Session {
	s := &Session{
		c:       c,
		want:    capacity,
		events:  make(chan Event, 64),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		backoff: make(map[enode.ID]*backoff),
	}
	go s.run(ctx)
	return s
}

// Events delivers the events of every connection the session makes (each
// names its Server), including DialFailed for servers it could not reach. It
// is closed when the session ends. Read it until then.
func (s *Session) Events() <-chan Event { return s.events }

// Close ends the session and its connection and waits until it has ended.
func (s *Session) Close() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

func (s *Session) run(ctx context.Context) {
	defer close(s.done)
	defer close(s.events)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	var offers []*Offer
	for ctx.Err() == nil {
		if len(offers) == 0 {
			sctx, scancel := context.WithTimeout(ctx, s.c.cfg.SurveyTimeout)
			offers, _ = s.c.Survey(sctx, s.c.cfg.SurveyLimit, nil)
			scancel()
		}
		next := s.pick(offers)
		if next == nil {
			offers = nil
			s.sleep(ctx, s.untilFirstRetry())
			continue
		}
		offers = remove(offers, next)
		conn, err := s.c.Connect(ctx, next.Node, s.want)
		if err != nil {
			if ctx.Err() == nil {
				s.emit(ctx, Event{Kind: DialFailed, Server: next.Node, Time: time.Now(), Err: err})
			}
			s.lost(next.Node.ID())
			continue
		}
		s.follow(ctx, conn)
		s.lost(next.Node.ID())
	}
}

// follow forwards conn's events until it ends, closing it when ctx ends.
func (s *Session) follow(ctx context.Context, conn *Conn) {
	for {
		select {
		case ev, ok := <-conn.Events():
			if !ok {
				return
			}
			s.emit(ctx, ev)
		case <-ctx.Done():
			conn.Close()
			for ev := range conn.Events() {
				if ev.Kind == Disconnected {
					s.emit(ctx, ev)
				}
			}
			return
		}
	}
}

// pick returns the best offer not in backoff that admits the client for some
// amount, or nil.
func (s *Session) pick(offers []*Offer) *Offer {
	now := time.Now()
	for _, o := range offers {
		if b := s.backoff[o.Node.ID()]; b != nil && now.Before(b.until) {
			continue
		}
		for _, c := range o.Capacities {
			if c > 0 {
				return o
			}
		}
	}
	return nil
}

func (s *Session) lost(id enode.ID) {
	b := s.backoff[id]
	if b == nil {
		b = &backoff{wait: s.c.cfg.MinBackoff}
		s.backoff[id] = b
	} else {
		b.wait = min(2*b.wait, s.c.cfg.MaxBackoff)
	}
	b.until = time.Now().Add(b.wait)
}

// untilFirstRetry is how long until a server leaves its backoff (at most
// MinBackoff, so new servers are found too).
func (s *Session) untilFirstRetry() time.Duration {
	wait := s.c.cfg.MinBackoff
	now := time.Now()
	for _, b := range s.backoff {
		if d := b.until.Sub(now); d > 0 && d < wait {
			wait = d
		}
	}
	return wait
}

func (s *Session) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// emit delivers ev; once the session is ending it gives up when the reader
// does not take it.
func (s *Session) emit(ctx context.Context, ev Event) {
	select {
	case s.events <- ev:
		return
	case <-ctx.Done():
	}
	select {
	case s.events <- ev:
	default:
	}
}

func remove(offers []*Offer, o *Offer) []*Offer {
	out := offers[:0:0]
	for _, x := range offers {
		if x != o {
			out = append(out, x)
		}
	}
	return out
}

package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/protocol"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds, in the order a connection sees them.
const (
	// Connected: the vfx handshake is done; Capacity is the capacity held
	// (0 = connected but waiting inactive), MinCap the server's minimum.
	Connected EventKind = iota
	// CapacityChanged: the server announced a new capacity (0 = deactivated:
	// still connected, waiting). Requested is true when it answers the
	// client's own request.
	CapacityChanged
	// Granted: a capacity request was answered. Asked is what was asked,
	// Capacity what the server granted (less than Asked for a partial
	// grant); Code and Msg are the server's (protocol.CapOK, CapNoPriority,
	// ...).
	Granted
	// Busy: a capacity request was not served (the client's request buffer
	// is empty); it is asked again after Wait.
	Busy
	// DialFailed: Hold could not connect to Server (Err says why); it tries
	// the next server.
	DialFailed
	// Disconnected: the connection ended; Err is the reason (a
	// p2p.DiscReason when it is one) and Evicted is true when the server
	// evicted the client (p2p.DiscTooManyPeers: another client out-ranked it).
	Disconnected
)

// Event is one change of a connection's state.
type Event struct {
	Kind      EventKind
	Server    *enode.Node
	Time      time.Time
	Capacity  uint64
	Asked     uint64
	MinCap    uint64
	Requested bool
	Code      uint
	Msg       string
	Wait      time.Duration
	Err       error
	Evicted   bool
}

// requestTimeout bounds one capacity request round trip.
const requestTimeout = 10 * time.Second

// firstDecision bounds how long Connected waits for the server's first
// capacity decision: the server registers the client right after the
// handshake and an active client hears of it at once, so a client still
// without capacity after this is waiting inactive.
const firstDecision = time.Second

// Conn is one connection to a vflux server that holds a capacity: it asks for
// the capacity wanted after connecting, again whenever the server changes the
// capacity on its own, and every Config.Retry while it holds less than wanted
// (a top-up is not announced to the client, so asking again is how a grown
// balance turns into capacity).
type Conn struct {
	cl     *protocol.Client
	retry  time.Duration
	want   atomic.Uint64
	events chan Event
	askNow chan struct{}

	quit      chan struct{}
	ctx       context.Context // ends at Close: aborts a pending request
	cancel    context.CancelFunc
	closeOnce sync.Once
	closed    atomic.Bool
}

// Connect dials server, waits for the vfx handshake (within
// Config.DialTimeout or until ctx ends) and starts holding capacity (0 = take
// what the server gives). The error says why the server was unreachable or
// refused the connection.
func (c *Client) Connect(ctx context.Context, server *enode.Node, capacity uint64) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	cl, err := c.peers.Dial(dctx, c.srv, server)
	if err != nil {
		return nil, err
	}
	conn := &Conn{
		cl:     cl,
		retry:  c.cfg.Retry,
		events: make(chan Event, 64),
		askNow: make(chan struct{}, 1),
		quit:   make(chan struct{}),
	}
	conn.ctx, conn.cancel = context.WithCancel(context.Background())
	conn.want.Store(capacity)
	go conn.loop()
	return conn, nil
}

// Events delivers the connection's events, starting with Connected and ending
// with Disconnected, after which it is closed. Read it until then: the
// connection waits for its reader.
func (c *Conn) Events() <-chan Event { return c.events }

// Node returns the server's record.
func (c *Conn) Node() *enode.Node { return c.cl.Node() }

// Capacity returns the capacity the server last announced (0 = inactive).
func (c *Conn) Capacity() uint64 { return c.cl.Capacity() }

// Handshake returns the server's handshake (MinCap and metering constants).
func (c *Conn) Handshake() protocol.Handshake { return c.cl.ServerHandshake() }

// Protocol returns the underlying vfx/1 client, for vflux requests.
func (c *Conn) Protocol() *protocol.Client { return c.cl }

// Request changes the capacity wanted and asks for it now.
func (c *Conn) Request(capacity uint64) {
	c.want.Store(capacity)
	select {
	case c.askNow <- struct{}{}:
	default:
	}
}

// Close disconnects; Events ends with Disconnected soon after.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.cancel()
		close(c.quit)
	})
}

func (c *Conn) loop() {
	defer close(c.events)
	var tick <-chan time.Time
	if c.retry > 0 {
		t := time.NewTicker(c.retry)
		defer t.Stop()
		tick = t.C
	}
	var busy *time.Timer
	var busyC <-chan time.Time
	defer func() {
		if busy != nil {
			busy.Stop()
		}
	}()
	defer c.cancel()
	quit := c.quit

	if c.cl.Capacity() == 0 {
		t := time.NewTimer(firstDecision)
		select {
		case <-c.cl.Updates():
		case <-t.C:
		case <-c.cl.Done():
		case <-c.quit:
		}
		t.Stop()
	}
	// reported is the capacity last reported; Updates may still hold the
	// update that Capacity() already showed at Connected, which is no change.
	reported := c.cl.Capacity()
	c.emit(Event{Kind: Connected, Capacity: reported, MinCap: c.cl.ServerHandshake().MinCap})
	ask := func(always bool) {
		if wait, asked := c.ask(c.ctx, always); asked && wait > 0 {
			if busy != nil {
				busy.Stop()
			}
			busy = time.NewTimer(wait)
			busyC = busy.C
		}
	}
	ask(true)
	for {
		select {
		case u := <-c.cl.Updates():
			if u.Capacity == reported {
				continue
			}
			reported = u.Capacity
			c.emit(Event{Kind: CapacityChanged, Capacity: u.Capacity, Requested: u.Requested})
			if !u.Requested {
				ask(false)
			}
		case <-tick:
			ask(false)
		case <-busyC:
			busyC = nil
			ask(false)
		case <-c.askNow:
			ask(true)
		case <-quit:
			quit = nil
			c.cl.Close()
		case <-c.cl.Done():
			reason := c.cl.DisconnectReason()
			evicted := !c.closed.Load() && errors.Is(reason, p2p.DiscTooManyPeers)
			c.emit(Event{Kind: Disconnected, Err: reason, Evicted: evicted})
			return
		}
	}
}

// ask requests the wanted capacity when the client is active and holds less
// (or, with always, any other amount). It returns the Busy wait when the
// request was metered out.
func (c *Conn) ask(ctx context.Context, always bool) (wait time.Duration, asked bool) {
	want, have := c.want.Load(), c.cl.Capacity()
	if want == 0 || have == 0 || have == want || (have > want && !always) {
		return 0, false // nothing wanted, inactive (activation is automatic) or held
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	reply, err := c.cl.RequestCapacity(rctx, want, 0)
	var busy *protocol.BusyError
	switch {
	case errors.As(err, &busy):
		wait = max(busy.Wait, 100*time.Millisecond)
		c.emit(Event{Kind: Busy, Asked: want, Wait: wait})
		return wait, true
	case err != nil:
		return 0, false // disconnected or closing: the loop sees Done next
	}
	c.emit(Event{Kind: Granted, Asked: want, Capacity: reply.Capacity, Code: reply.Code, Msg: reply.Msg})
	return 0, true
}

// emit delivers ev to the reader; after Close it gives up when the reader
// does not take it.
func (c *Conn) emit(ev Event) {
	ev.Server, ev.Time = c.cl.Node(), time.Now()
	select {
	case c.events <- ev:
		return
	case <-c.quit:
	}
	select {
	case c.events <- ev:
	default:
	}
}

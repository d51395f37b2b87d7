package protocol

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// BusyError is returned by Client.Vflux and Client.RequestCapacity when the
// server refused the request because it would overdraw the client's buffer.
// Retrying after Wait succeeds unless other requests are sent meanwhile.
type BusyError struct {
	Wait time.Duration
}

// Error implements error.
func (e *BusyError) Error() string { return fmt.Sprintf("vfx server busy: retry in %v", e.Wait) }

// Errors of the client side.
var (
	// ErrAlreadyDialing: Dial was called for a server this ClientPeers is
	// already dialing or connected to.
	ErrAlreadyDialing = errors.New("vfx: already dialing or connected to this server")
	// ErrDisconnected: the connection ended before the answer arrived.
	ErrDisconnected = errors.New("vfx: disconnected")
)

// ClientPeers registers the client side of "vfx"/1 on a p2p.Server: put its
// Protocol into the server's Protocols before Start, then Dial servers.
type ClientPeers struct {
	// HandshakeTimeout bounds the server's Handshake; 0 means
	// params.HandshakeTimeout. Set it before the first Dial.
	HandshakeTimeout time.Duration

	mu    sync.Mutex
	dials map[enode.ID]*Client // dialing or connected, until the first disconnect
}

// NewClientPeers creates the client side of the capability.
func NewClientPeers() *ClientPeers {
	return &ClientPeers{dials: make(map[enode.ID]*Client)}
}

// Protocol returns the capability for the client's p2p.Server.
func (c *ClientPeers) Protocol() p2p.Protocol {
	return p2p.Protocol{Name: Name, Version: Version, Length: Length, Run: c.run}
}

// Dial connects to the vflux server n through srv (as a static peer) and waits
// for the vfx handshake. After the first disconnect the static entry is removed
// (go-ethereum would redial it forever); dial again for a new connection. When
// ctx ends first the dial is abandoned. The server registers the client right
// after the handshake, so Dial may return just before that: wait for Updates
// (an active client gets one at once) or for the pool's events when it matters.
// Note that go-ethereum does not dial a node again within 35 s of its last
// dial (its dial history): a second Dial of the same server from the same
// p2p.Server within that time waits that long (or until ctx ends).
func (c *ClientPeers) Dial(ctx context.Context, srv *p2p.Server, n *enode.Node) (*Client, error) {
	cl := newClient(c, srv, n)
	c.mu.Lock()
	if c.dials[n.ID()] != nil {
		c.mu.Unlock()
		return nil, ErrAlreadyDialing
	}
	c.dials[n.ID()] = cl
	c.mu.Unlock()

	// Peer events tell how the connection ended; the subscription is drained
	// until then so it never blocks the server.
	events := make(chan *p2p.PeerEvent, 16)
	sub := srv.SubscribeEvents(events)
	go cl.watch(sub, events)
	srv.AddPeer(n)

	select {
	case <-cl.ready:
		return cl, nil
	case <-cl.done:
		return nil, fmt.Errorf("vfx dial %x: %w", n.ID().Bytes()[:8], cl.DisconnectReason())
	case <-ctx.Done():
		cl.Close()
		return nil, fmt.Errorf("vfx dial %x: %w", n.ID().Bytes()[:8], ctx.Err())
	}
}

func newClient(peers *ClientPeers, srv *p2p.Server, n *enode.Node) *Client {
	return &Client{
		peers:   peers,
		srv:     srv,
		node:    n,
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
		closeCh: make(chan struct{}),
		updates: make(chan CapacityUpdate, 1),
		pending: make(map[uint64]chan rawMsg),
	}
}

func (c *ClientPeers) forget(cl *Client) {
	c.mu.Lock()
	if c.dials[cl.node.ID()] == cl {
		delete(c.dials, cl.node.ID())
	}
	c.mu.Unlock()
}

// run is the client-side peer loop; it returns a bare p2p.DiscReason.
func (c *ClientPeers) run(p *p2p.Peer, rw p2p.MsgReadWriter) error {
	return discReason(c.serve(p, rw))
}

func (c *ClientPeers) serve(p *p2p.Peer, rw p2p.MsgReadWriter) error {
	c.mu.Lock()
	cl := c.dials[p.ID()]
	c.mu.Unlock()
	if cl == nil || !cl.attach(rw) {
		return p2p.DiscUselessPeer // we did not dial it (or dialled it twice)
	}
	timeout := c.HandshakeTimeout
	if timeout == 0 {
		timeout = params.HandshakeTimeout
	}
	link, hs, err := startConn(rw, &Handshake{Version: Version}, true, timeout, cl.closeCh, nil)
	if err != nil {
		if err == p2p.DiscQuitting { // closed by Close during the handshake
			err = p2p.DiscRequested
		}
		return err
	}
	defer link.stop()
	cl.hs = *hs
	close(cl.ready)
	for {
		select {
		case <-cl.closeCh:
			return p2p.DiscRequested
		case err := <-link.errc:
			return err
		case m := <-link.msgs:
			if err := cl.handle(m); err != nil {
				return err
			}
		}
	}
}

// Client is one connection to a vflux server.
type Client struct {
	peers *ClientPeers
	srv   *p2p.Server
	node  *enode.Node

	ready     chan struct{} // closed after the handshake
	hs        Handshake     // set before ready is closed
	done      chan struct{} // closed once the drop is known
	reason    error         // set before done is closed
	closeCh   chan struct{}
	closeOnce sync.Once
	finOnce   sync.Once

	capacity atomic.Uint64
	spent    atomic.Uint64       // cost units of answered requests
	updates  chan CapacityUpdate // capacity 1, coalesced

	mu       sync.Mutex
	rw       p2p.MsgReadWriter // nil until the connection runs
	attached bool
	nextID   uint64
	pending  map[uint64]chan rawMsg
}

// attach binds the running connection; false if one was attached before.
func (c *Client) attach(rw p2p.MsgReadWriter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attached {
		return false
	}
	c.attached, c.rw = true, rw
	return true
}

// watch follows the client server's peer events until this connection drops
// (or it is closed before it ever ran), then records the reason.
func (c *Client) watch(sub interface {
	Unsubscribe()
	Err() <-chan error
}, events <-chan *p2p.PeerEvent) {
	defer sub.Unsubscribe()
	id := c.node.ID()
	closeCh := c.closeCh
	for {
		select {
		case ev := <-events:
			if ev.Peer == id && ev.Type == p2p.PeerEventTypeDrop {
				c.finish(parseReason(ev.Error))
				return
			}
		case <-closeCh:
			c.mu.Lock()
			attached := c.attached
			c.mu.Unlock()
			if !attached {
				// Never ran: nothing will drop. A connection that completes
				// later finds no dial and is refused.
				c.finish(p2p.DiscRequested)
				return
			}
			closeCh = nil // keep waiting for the drop event
		case <-sub.Err():
			c.finish(ErrDisconnected)
			return
		}
	}
}

func (c *Client) finish(reason error) {
	c.finOnce.Do(func() {
		c.srv.RemovePeer(c.node)
		c.peers.forget(c)
		c.mu.Lock()
		c.reason = reason
		c.mu.Unlock()
		close(c.done)
	})
}

// parseReason maps a peer event's error text back to the p2p.DiscReason.
func parseReason(s string) error {
	for r := p2p.DiscReason(0); r <= p2p.DiscSubprotocolError; r++ {
		if r.Error() == s && !strings.HasPrefix(s, "unknown disconnect reason") {
			return r
		}
	}
	return errors.New(s)
}

// handle processes one server message in the client loop.
func (c *Client) handle(m rawMsg) error {
	switch m.code {
	case CapacityUpdateMsg:
		var u CapacityUpdate
		if err := rlp.DecodeBytes(m.data, &u); err != nil {
			return p2p.DiscProtocolError
		}
		c.capacity.Store(u.Capacity)
		select {
		case old := <-c.updates:
			u.Requested = u.Requested || old.Requested
		default:
		}
		c.updates <- u // never blocks: this loop is the only sender and just made room
		return nil
	case VfluxReplyMsg, CapacityReplyMsg, BusyMsg:
		var head struct {
			ReqID uint64
			Rest  []rlp.RawValue `rlp:"tail"`
		}
		if err := rlp.DecodeBytes(m.data, &head); err != nil {
			return p2p.DiscProtocolError
		}
		c.mu.Lock()
		ch := c.pending[head.ReqID]
		delete(c.pending, head.ReqID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m // buffered
		}
		return nil
	default: // the handshake again, client->server codes, unknown codes
		return p2p.DiscProtocolError
	}
}

// Node returns the server's node.
func (c *Client) Node() *enode.Node { return c.node }

// Capacity returns the capacity the server last announced (0: inactive).
func (c *Client) Capacity() uint64 { return c.capacity.Load() }

// Updates delivers capacity updates. It is coalesced: when the reader falls
// behind it gets the latest capacity with Requested OR-ed over the skipped ones.
func (c *Client) Updates() <-chan CapacityUpdate { return c.updates }

// ServerHandshake returns the server's Handshake: MinCap and the metering
// constants to pace requests with (see RequestCost).
func (c *Client) ServerHandshake() Handshake { return c.hs }

// SpentCost returns the cost units the server charged for every request
// answered so far, computed with the Handshake's constants from the message
// sizes (RequestCost), as the server meters them. A client paces itself by
// letting SpentCost/capacity seconds pass per unit spent.
func (c *Client) SpentCost() uint64 { return c.spent.Load() }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// DisconnectReason returns why the connection ended (a p2p.DiscReason when the
// reason is one) once Done is closed, nil before.
func (c *Client) DisconnectReason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Close disconnects (if connected) and stops redialling. Done is closed once
// the disconnect is complete.
func (c *Client) Close() {
	c.closeOnce.Do(func() { close(c.closeCh) })
	c.srv.RemovePeer(c.node)
}

// RequestCapacity asks the server for a capacity the client can hold for bias
// against newcomers. Any CapacityReply is returned with a nil error (check
// Code; with CapOK, Capacity may be less than asked); a Busy answer is a
// *BusyError. When it returns, Capacity() already reflects any update the
// request caused.
func (c *Client) RequestCapacity(ctx context.Context, capacity uint64, bias time.Duration) (CapacityReply, error) {
	secs := uint64(0)
	if bias > 0 {
		secs = uint64((bias + time.Second - 1) / time.Second)
	}
	m, err := c.roundTrip(ctx, CapacityRequestMsg, func(id uint64) interface{} {
		return &CapacityRequest{ReqID: id, Capacity: capacity, BiasSecs: secs}
	})
	if err != nil {
		return CapacityReply{}, err
	}
	if m.code != CapacityReplyMsg {
		return CapacityReply{}, fmt.Errorf("vfx: capacity request answered with message %#x", m.code)
	}
	var reply CapacityReply
	if err := rlp.DecodeBytes(m.data, &reply); err != nil {
		return CapacityReply{}, fmt.Errorf("vfx: bad capacity reply: %w", err)
	}
	if reply.Code == CapBusy {
		return reply, &BusyError{}
	}
	return reply, nil
}

// Vflux sends a batch of vflux requests and returns the replies; an empty
// Replies when the server did not answer the batch. A Busy answer is a
// *BusyError.
func (c *Client) Vflux(ctx context.Context, reqs vflux.Requests) (vflux.Replies, error) {
	enc, err := rlp.EncodeToBytes(reqs)
	if err != nil {
		return nil, fmt.Errorf("vfx: encode requests: %w", err)
	}
	m, err := c.roundTrip(ctx, VfluxRequestMsg, func(id uint64) interface{} {
		return &VfluxRequest{ReqID: id, Requests: enc}
	})
	if err != nil {
		return nil, err
	}
	if m.code != VfluxReplyMsg {
		return nil, fmt.Errorf("vfx: vflux request answered with message %#x", m.code)
	}
	var reply VfluxReply
	if err := rlp.DecodeBytes(m.data, &reply); err != nil {
		return nil, fmt.Errorf("vfx: bad vflux reply: %w", err)
	}
	var replies vflux.Replies
	if err := rlp.DecodeBytes(reply.Replies, &replies); err != nil {
		return nil, fmt.Errorf("vfx: bad vflux replies: %w", err)
	}
	return replies, nil
}

// roundTrip sends the message made by mk for a fresh request ID and waits for
// the answer with that ID. Busy answers become *BusyError.
func (c *Client) roundTrip(ctx context.Context, code uint64, mk func(id uint64) interface{}) (rawMsg, error) {
	ch := make(chan rawMsg, 1)
	c.mu.Lock()
	rw := c.rw
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if rw == nil {
		return rawMsg{}, ErrDisconnected
	}
	select {
	case <-c.done:
		return rawMsg{}, ErrDisconnected
	default:
	}
	enc, err := rlp.EncodeToBytes(mk(id))
	if err != nil {
		return rawMsg{}, fmt.Errorf("vfx: encode message %#x: %w", code, err)
	}
	if err := sendRaw(rw, code, enc); err != nil {
		// A failed write means the connection is gone (or going).
		return rawMsg{}, fmt.Errorf("%w: %v", ErrDisconnected, err)
	}
	var m rawMsg
	select {
	case m = <-ch:
	case <-c.done:
		// An answer that arrived before the connection ended is in ch
		// already: the peer loop hands every message over before it
		// returns, and done is closed after that. A select with both ready
		// picks either, so look again.
		select {
		case m = <-ch:
		default:
			return rawMsg{}, ErrDisconnected
		}
	case <-ctx.Done():
		return rawMsg{}, ctx.Err()
	}
	if m.code == BusyMsg {
		var b Busy
		if err := rlp.DecodeBytes(m.data, &b); err != nil {
			return rawMsg{}, fmt.Errorf("vfx: bad busy reply: %w", err)
		}
		return rawMsg{}, &BusyError{Wait: time.Duration(b.WaitMillis) * time.Millisecond}
	}
	switch m.code {
	case VfluxReplyMsg:
		c.spent.Add(RequestCost(c.hs.CostBase, c.hs.CostPerKB, len(enc), len(m.data)))
	case CapacityReplyMsg:
		c.spent.Add(c.hs.CostBase)
	}
	return m, nil
}

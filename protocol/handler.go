package protocol

import (
	"net"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// Backend is the client pool as the protocol sees it; *clientpool.ClientPool
// satisfies it.
type Backend interface {
	// Register admits a connected client; nil means refused (pool stopped,
	// duplicate ID, or a limit: then the peer was told to Disconnect). The pool
	// may call the peer's UpdateCapacity or Disconnect before Register returns.
	Register(p clientpool.Peer) clientpool.ConnectedBalance
	// Unregister removes a client registered before.
	Unregister(p clientpool.Peer)
	// SetCapacity changes a client's capacity (see clientpool.ClientPool).
	SetCapacity(n *enode.Node, reqCap uint64, bias time.Duration, requested bool) (uint64, error)
}

// RequestServer serves encoded vflux batches; *vflux.Server satisfies it.
type RequestServer interface {
	// ServeEncoded answers an encoded vflux.Requests with encoded vflux.Replies,
	// or nil when it does not answer.
	ServeEncoded(id enode.ID, ip net.IP, req []byte) []byte
}

// The pool and the request server are what the node plugs in.
var (
	_ Backend       = (*clientpool.ClientPool)(nil)
	_ RequestServer = (*vflux.Server)(nil)
)

// Config configures the server side of the capability.
type Config struct {
	Pool              Backend       // required
	Requests          RequestServer // nil: every batch gets an empty answer
	MinCap            uint64        // 0 means params.DefaultMinCap
	InactiveAllowance time.Duration // how long a waiting free client stays connected
	Clock             mclock.Clock  // metering clock; nil means mclock.System
	// Metering constants announced in the Handshake; 0 means the params defaults.
	CostBase, CostPerKB, BufferSecs uint64
	// HandshakeTimeout is how long a client has to send its Handshake; 0 means
	// params.HandshakeTimeout.
	HandshakeTimeout time.Duration
}

// Handler is the server side of "vfx"/1: one per node. It runs one loop per
// connected client, registered with the pool for the whole connection.
type Handler struct {
	cfg     Config
	hs      Handshake // what we send
	timeout time.Duration
	quit    chan struct{}

	// mu guards stopped and peers; wg counts running peer loops. A loop enters
	// only while not stopped, so Stop's Wait covers every loop.
	mu      sync.Mutex
	stopped bool
	peers   int
	wg      sync.WaitGroup
}

// NewHandler creates the server side of the capability.
func NewHandler(cfg Config) *Handler {
	if cfg.MinCap == 0 {
		cfg.MinCap = params.DefaultMinCap
	}
	if cfg.Clock == nil {
		cfg.Clock = mclock.System{}
	}
	if cfg.CostBase == 0 {
		cfg.CostBase = params.RequestCostBase
	}
	if cfg.CostPerKB == 0 {
		cfg.CostPerKB = params.RequestCostPerKB
	}
	if cfg.BufferSecs == 0 {
		cfg.BufferSecs = params.BufferSecs
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = params.HandshakeTimeout
	}
	return &Handler{
		cfg: cfg,
		hs: Handshake{
			Version:    Version,
			Server:     true,
			MinCap:     cfg.MinCap,
			BufferSecs: cfg.BufferSecs,
			CostBase:   cfg.CostBase,
			CostPerKB:  cfg.CostPerKB,
		},
		timeout: cfg.HandshakeTimeout,
		quit:    make(chan struct{}),
	}
}

// Protocol returns the capability to put into the p2p server's Protocols. Its
// ENR attribute "vfx" = [version] marks the node as a vflux server; its node
// info (admin_nodeInfo) is the Handshake the server sends.
func (h *Handler) Protocol() p2p.Protocol {
	return p2p.Protocol{
		Name:       Name,
		Version:    Version,
		Length:     Length,
		Run:        h.run,
		NodeInfo:   func() interface{} { hs := h.hs; return &hs },
		Attributes: []enr.Entry{enrEntry{Version: Version}},
	}
}

// Handshake returns the Handshake this server sends.
func (h *Handler) Handshake() Handshake { return h.hs }

// Stop makes every peer loop return p2p.DiscQuitting (unregistering its client)
// and waits for them; peers connecting later are refused. It is idempotent.
func (h *Handler) Stop() {
	h.mu.Lock()
	if !h.stopped {
		h.stopped = true
		close(h.quit)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// PeerCount returns the number of running peer loops.
func (h *Handler) PeerCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peers
}

func (h *Handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return false
	}
	h.wg.Add(1)
	h.peers++
	return true
}

func (h *Handler) leave() {
	h.mu.Lock()
	h.peers--
	h.mu.Unlock()
	h.wg.Done()
}

// run is the peer loop: register, handshake, then serve until the client
// leaves, misbehaves, is evicted or the handler stops. It returns a bare
// p2p.DiscReason (go-ethereum turns anything else into DiscSubprotocolError).
func (h *Handler) run(p *p2p.Peer, rw p2p.MsgReadWriter) error {
	return discReason(h.serve(p, rw))
}

// discReason makes err a bare p2p.DiscReason: a read or write error means the
// connection is already gone, which is a network error.
func discReason(err error) error {
	if _, ok := err.(p2p.DiscReason); ok {
		return err
	}
	return p2p.DiscNetworkError
}

// serve is run's body; it may return plain I/O errors.
func (h *Handler) serve(p *p2p.Peer, rw p2p.MsgReadWriter) error {
	if !h.enter() {
		return p2p.DiscQuitting
	}
	defer h.leave()

	// The peer is a client of the pool from the moment it connects, before its
	// Handshake: it holds a p2p slot from now on, and only the pool can rank it
	// against the others and free a slot (see doc.go, "Peer slots"). Its node ID
	// is already authenticated by RLPx, so the pool knows its balances. Capacity
	// updates wait in pp until the handshake is done.
	pp := newPeer(p, rw, h.cfg.InactiveAllowance)
	pp.meter = newMeter(h.cfg.Clock, h.cfg.MinCap, h.cfg.BufferSecs)
	pp.balance = h.cfg.Pool.Register(pp)
	if pp.balance == nil {
		select {
		case <-pp.discCh: // refused by a limit (clientpool.SetMaxPerFreeID)
			return p2p.DiscTooManyPeers
		default: // its node ID is registered already (or the pool stopped)
			return p2p.DiscAlreadyConnected
		}
	}
	// The registration never outlives the loop, whatever the exit path.
	defer h.cfg.Pool.Unregister(pp)

	c, _, err := startConn(rw, &h.hs, false, h.timeout, h.quit, pp.discCh)
	if err != nil {
		p.Log().Debug("vfx handshake failed", "err", err)
		return err
	}
	defer c.stop()

	for {
		// Capacity updates go out before anything else the loop sends, so a
		// CapacityReply always follows the update its request caused.
		if err := h.flushUpdate(pp); err != nil {
			return err
		}
		// An evicted client or a stopping handler serves no further request.
		select {
		case <-pp.discCh:
			p.Log().Debug("vfx client evicted")
			return p2p.DiscTooManyPeers
		case <-h.quit:
			return p2p.DiscQuitting
		default:
		}
		select {
		case <-pp.updateCh:
		case <-pp.discCh:
			p.Log().Debug("vfx client evicted")
			return p2p.DiscTooManyPeers
		case <-h.quit:
			return p2p.DiscQuitting
		case err := <-c.errc:
			return err
		case m := <-c.msgs:
			if err := h.flushUpdate(pp); err != nil {
				return err
			}
			if err := h.handle(pp, m); err != nil {
				p.Log().Debug("vfx peer dropped", "code", m.code, "err", err)
				return err
			}
		}
	}
}

// flushUpdate sends the pending capacity update, if any, and meters the client
// at its new capacity (an inactive client is metered as if at minCap).
func (h *Handler) flushUpdate(pp *peer) error {
	u, ok := pp.takeUpdate()
	if !ok {
		return nil
	}
	pp.capacity = u.Capacity
	pp.meter.setRate(max(u.Capacity, h.cfg.MinCap))
	return pp.sendUpdate(u)
}

// handlerFunc handles one client message; a returned error ends the loop.
type handlerFunc func(h *Handler, pp *peer, data []byte) error

// serverHandlers are the messages a client may send after the handshake.
var serverHandlers = map[uint64]handlerFunc{
	VfluxRequestMsg:    handleVfluxRequest,
	CapacityRequestMsg: handleCapacityRequest,
}

// handle dispatches one message. Codes a client may not send (the handshake
// again, server->client messages) and unknown codes are protocol errors.
func (h *Handler) handle(pp *peer, m rawMsg) error {
	fn := serverHandlers[m.code]
	if fn == nil {
		return p2p.DiscProtocolError
	}
	return fn(h, pp, m.data)
}

package protocol

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/vflux"
)

// rawMsg is a message read off the wire with its payload in memory.
type rawMsg struct {
	code uint64
	data []byte
}

// readLoop reads messages from rw and hands them to msgs until a read fails or
// quit is closed. Oversize messages end it with DiscProtocolError. It runs in
// its own goroutine so the peer loop can select on messages, capacity updates
// and shutdown; it exits when the connection closes (for a p2p peer, right after
// Run returns).
func readLoop(rw p2p.MsgReader, msgs chan<- rawMsg, errc chan<- error, quit <-chan struct{}) {
	for {
		msg, err := rw.ReadMsg()
		if err != nil {
			errc <- err
			return
		}
		if msg.Size > MaxMessageSize {
			msg.Discard()
			errc <- p2p.DiscProtocolError
			return
		}
		data := make([]byte, msg.Size)
		if _, err := io.ReadFull(msg.Payload, data); err != nil {
			errc <- err
			return
		}
		select {
		case msgs <- rawMsg{msg.Code, data}:
		case <-quit:
			return
		}
	}
}

// conn is one connection's running read loop, as both sides' peer loops use it.
type conn struct {
	msgs chan rawMsg
	errc chan error
	quit chan struct{}
}

// startConn starts the read loop on rw and exchanges Handshakes: it sends ours
// and waits for the remote's (see readHandshake), giving up after timeout, when
// abort is closed (DiscQuitting) or when evict is closed (DiscTooManyPeers; nil
// for a side that cannot be evicted). On success the caller must stop the
// connection's read loop with stop; on error it is already stopped. Errors are
// bare disconnect reasons or I/O errors.
func startConn(rw p2p.MsgReadWriter, ours *Handshake, wantServer bool, timeout time.Duration, abort, evict <-chan struct{}) (*conn, *Handshake, error) {
	c := &conn{
		msgs: make(chan rawMsg),
		errc: make(chan error, 1),
		quit: make(chan struct{}),
	}
	go readLoop(rw, c.msgs, c.errc, c.quit)
	sent := sendHandshake(rw, ours)
	hs, err := readHandshake(c.msgs, c.errc, sent, wantServer, timeout, abort, evict)
	if err != nil {
		c.stop()
		return nil, nil, err
	}
	return c, hs, nil
}

// stop ends the read loop (once its pending read returns).
func (c *conn) stop() { close(c.quit) }

// sendRaw sends an already encoded payload.
func sendRaw(w p2p.MsgWriter, code uint64, payload []byte) error {
	return w.WriteMsg(p2p.Msg{Code: code, Size: uint32(len(payload)), Payload: bytes.NewReader(payload)})
}

// peer is the server side of one client connection. It is the clientpool.Peer
// the pool sees: the pool's callbacks only record and signal (they never block
// and never write to the network); the peer loop does all sending, so messages
// leave in the order the pool decided them.
type peer struct {
	p      *p2p.Peer
	rw     p2p.MsgReadWriter
	ip     net.IP // nil for a test pipe
	freeID string
	allow  time.Duration

	// Signals from the pool's callbacks to the peer loop.
	updateCh chan struct{} // capacity 1: "an update is pending"
	discCh   chan struct{} // closed by Disconnect
	discOnce sync.Once

	// mu guards the pending capacity update.
	mu         sync.Mutex
	pending    bool
	pendingCap uint64
	pendingReq bool

	// Owned by the peer loop.
	capacity uint64
	balance  clientpool.ConnectedBalance
	meter    *meter
	strikes  int // consecutive Busy replies
}

func newPeer(p *p2p.Peer, rw p2p.MsgReadWriter, allowance time.Duration) *peer {
	var ip net.IP
	if tcp, ok := p.RemoteAddr().(*net.TCPAddr); ok {
		ip = tcp.IP
	}
	return &peer{
		p:        p,
		rw:       rw,
		ip:       ip,
		freeID:   vflux.FreeClientID(p.ID(), ip),
		allow:    allowance,
		updateCh: make(chan struct{}, 1),
		discCh:   make(chan struct{}),
	}
}

// Node implements clientpool.Peer.
func (p *peer) Node() *enode.Node { return p.p.Node() }

// FreeClientID implements clientpool.Peer: the remote IP (IPv6 /64), or the node
// ID in hex for loopback and pipes (SPEC 3.5).
func (p *peer) FreeClientID() string { return p.freeID }

// InactiveAllowance implements clientpool.Peer.
func (p *peer) InactiveAllowance() time.Duration { return p.allow }

// UpdateCapacity implements clientpool.Peer. It coalesces: the latest capacity
// wins and requested is OR-ed until the peer loop sends the update.
func (p *peer) UpdateCapacity(capacity uint64, requested bool) {
	p.mu.Lock()
	p.pendingCap = capacity
	p.pendingReq = p.pendingReq || requested
	p.pending = true
	p.mu.Unlock()
	select {
	case p.updateCh <- struct{}{}:
	default: // already signalled
	}
}

// Disconnect implements clientpool.Peer: the peer loop returns
// DiscTooManyPeers and unregisters.
func (p *peer) Disconnect() {
	p.discOnce.Do(func() { close(p.discCh) })
}

// takeUpdate returns and clears the pending capacity update.
func (p *peer) takeUpdate() (CapacityUpdate, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.pending {
		return CapacityUpdate{}, false
	}
	u := CapacityUpdate{Capacity: p.pendingCap, Requested: p.pendingReq}
	p.pending, p.pendingReq = false, false
	return u, true
}

// sendHandshake sends hs in a goroutine (so a remote that does not read can't
// block the handshake timeout) and returns the channel of its result.
func sendHandshake(w p2p.MsgWriter, hs *Handshake) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- p2p.Send(w, HandshakeMsg, hs) }()
	return errc
}

// readHandshake waits for the remote's Handshake: it must be the first message,
// decode, and carry our version; wantServer says which role the remote must
// have. Errors are bare disconnect reasons.
func readHandshake(msgs <-chan rawMsg, errc <-chan error, sent <-chan error, wantServer bool, timeout time.Duration, quit, evict <-chan struct{}) (*Handshake, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var hs *Handshake
	in := msgs // set to nil once the Handshake is in: later messages wait for the loop
	for hs == nil || sent != nil {
		select {
		case err := <-sent:
			if err != nil {
				return nil, err
			}
			sent = nil
		case m := <-in:
			in = nil
			if m.code != HandshakeMsg {
				return nil, p2p.DiscProtocolError
			}
			hs = new(Handshake)
			if err := rlp.DecodeBytes(m.data, hs); err != nil {
				return nil, p2p.DiscProtocolError
			}
			if hs.Version != Version {
				return nil, p2p.DiscProtocolError
			}
			if hs.Server != wantServer {
				return nil, p2p.DiscUselessPeer
			}
		case err := <-errc:
			return nil, err
		case <-timer.C:
			return nil, p2p.DiscReadTimeout
		case <-quit:
			return nil, p2p.DiscQuitting
		case <-evict:
			return nil, p2p.DiscTooManyPeers
		}
	}
	return hs, nil
}

// Conn returns the connection the client runs on. The node uses it to make a
// peer that also runs governed protocols one pool client (SPEC 11).
func (p *peer) Conn() *p2p.Peer { return p.p }

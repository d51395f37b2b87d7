package node

import (
	"net"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/protocol"
	"github.com/vflux-net/vflux/vflux"
)

// clientRegistry sits between the protocols and the pool (it is the vfx/1
// handler's protocol.Backend, and the governed protocols' wrappers attach to
// it too). It keeps one client per connection, however many protocols that
// connection runs (SPEC 11): registered with the pool when its first protocol
// starts, unregistered when its last ends. It keeps only what is the
// connection's own (its protocols, its governed flow, whether the pool has
// decided on it yet); capacities, balances and prices are the pool's, and the
// RPC API reads them from the pool by node ID.
type clientRegistry struct {
	pool  *clientpool.ClientPool
	flows flowConfig
	allow time.Duration

	// mu guards clients and the registry-owned fields of every client. Lock
	// order: mu, then a vfx/1 peer's own lock (its UpdateCapacity and
	// Disconnect only record and signal) or a client's flow lock. No pool
	// method is called while mu is held (the pool calls client.UpdateCapacity
	// without its own lock, and that takes mu).
	mu      sync.Mutex
	clients map[enode.ID]*peerClient
	stopped bool
}

var _ protocol.Backend = (*clientRegistry)(nil)

// peerClient is one pool client: one inbound connection with every protocol it
// runs. It is the clientpool.Peer the pool sees; capacity changes and the
// pool's Disconnect reach vfx/1's loop and the governed protocols' flow (which
// holds the ConnectedBalance its requests are charged to).
type peerClient struct {
	reg    *clientRegistry
	id     enode.ID
	node   *enode.Node
	conn   *p2p.Peer // nil for a vfx/1 peer that does not tell its connection
	freeID string
	flow   *flow         // governed flow control, shared by the governed protocols
	ready  chan struct{} // closed when the pool's Register returned
	gone   chan struct{} // closed when the pool's Unregister returned

	// guarded by reg.mu
	registered   bool            // the pool's Register accepted it (false until ready, or if refused)
	vfx          clientpool.Peer // vfx/1's peer while its loop is registered
	protocols    map[string]int  // running protocols ("eth/69") -> count
	refs         int             // running protocols
	governed     int             // running governed protocols
	disconnected bool            // the pool told it to leave
	leaving      bool            // refs reached 0: Unregister is running
}

func newClientRegistry(pool *clientpool.ClientPool, allow time.Duration, flows flowConfig) *clientRegistry {
	return &clientRegistry{pool: pool, allow: allow, flows: flows, clients: make(map[enode.ID]*peerClient)}
}

// Node implements clientpool.Peer.
func (c *peerClient) Node() *enode.Node { return c.node }

// FreeClientID implements clientpool.Peer: the same key vfx/1 uses (SPEC 3.5).
func (c *peerClient) FreeClientID() string { return c.freeID }

// InactiveAllowance implements clientpool.Peer.
func (c *peerClient) InactiveAllowance() time.Duration { return c.reg.allow }

// UpdateCapacity implements clientpool.Peer: it passes the capacity to vfx/1's
// loop and the governed flow (whose meter runs at it); it never blocks.
func (c *peerClient) UpdateCapacity(newCap uint64, requested bool) {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	if c.vfx != nil {
		c.vfx.UpdateCapacity(newCap, requested)
	}
	c.flow.setCapacity(newCap)
}

// Disconnect implements clientpool.Peer: every protocol of the connection ends
// with DiscTooManyPeers. vfx/1's loop returns it itself; the governed
// protocols read it from their flow, and the connection is told as well in
// case a protocol is busy elsewhere than reading.
func (c *peerClient) Disconnect() {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	c.disconnected = true
	if c.vfx != nil {
		c.vfx.Disconnect()
	}
	c.flow.close(p2p.DiscTooManyPeers)
	if c.governed > 0 && c.conn != nil {
		go c.conn.Disconnect(p2p.DiscTooManyPeers) // may wait for the peer's loop
	}
}

// connOf returns the connection of a vfx/1 peer, when it tells it.
func connOf(p clientpool.Peer) *p2p.Peer {
	if cp, ok := p.(interface{ Conn() *p2p.Peer }); ok {
		return cp.Conn()
	}
	return nil
}

// attach adds a running protocol (name "eth/69"; vfx is vfx/1's peer or nil
// for a governed protocol) to the client of conn, creating the client and
// registering it with the pool when it is the first. It returns the client once
// the pool decided, or nil if the pool refused it (stopped, or another
// connection with the same node ID is still a client). A client that is
// returned must be detached with the same arguments.
func (r *clientRegistry) attach(n *enode.Node, conn *p2p.Peer, freeID string, vfx clientpool.Peer, name string) *peerClient {
	id := n.ID()
	r.mu.Lock()
	for {
		if r.stopped {
			r.mu.Unlock()
			return nil
		}
		c := r.clients[id]
		if c == nil {
			break
		}
		if c.leaving { // the previous client of this ID is being unregistered
			gone := c.gone
			r.mu.Unlock()
			<-gone
			r.mu.Lock()
			continue
		}
		if conn == nil || c.conn != conn || (vfx != nil && c.vfx != nil) {
			r.mu.Unlock()
			return nil // another connection, or a second vfx/1 loop
		}
		// Another protocol of this connection: share its client.
		c.add(vfx, name)
		ready := c.ready
		r.mu.Unlock()
		<-ready
		r.mu.Lock()
		defer r.mu.Unlock()
		if !c.registered {
			return nil
		}
		if vfx != nil {
			// The capacity was told before vfx/1 came: tell it the same now
			// (the flow runs at the capacity last told), under mu, so a newer
			// update from the pool cannot overtake this one.
			if c.disconnected {
				vfx.Disconnect()
			} else if told := c.flow.capacity(); told > 0 {
				vfx.UpdateCapacity(told, false)
			}
		}
		return c
	}
	c := &peerClient{
		reg:       r,
		id:        id,
		node:      n,
		conn:      conn,
		freeID:    freeID,
		flow:      newFlow(r.flows),
		ready:     make(chan struct{}),
		gone:      make(chan struct{}),
		protocols: make(map[string]int),
	}
	c.add(vfx, name)
	r.clients[id] = c
	r.mu.Unlock()

	bal := r.pool.Register(c) // may call c.UpdateCapacity or c.Disconnect

	r.mu.Lock()
	defer r.mu.Unlock()
	if bal == nil {
		close(c.ready)
		delete(r.clients, id)
		close(c.gone)
		return nil
	}
	c.registered = true
	c.flow.setBalance(bal)
	close(c.ready)
	return c
}

// add counts a starting protocol; reg.mu is held.
func (c *peerClient) add(vfx clientpool.Peer, name string) {
	c.refs++
	c.protocols[name]++
	if vfx != nil {
		c.vfx = vfx
	} else {
		c.governed++
	}
}

// detach ends a protocol attached before; the last one unregisters the client.
func (r *clientRegistry) detach(c *peerClient, vfx bool, name string) {
	r.mu.Lock()
	c.refs--
	if c.protocols[name]--; c.protocols[name] <= 0 {
		delete(c.protocols, name)
	}
	if vfx {
		c.vfx = nil
	} else {
		c.governed--
	}
	if c.refs > 0 {
		r.mu.Unlock()
		return
	}
	c.leaving = true
	r.mu.Unlock()

	r.pool.Unregister(c)

	r.mu.Lock()
	if r.clients[c.id] == c {
		delete(r.clients, c.id)
	}
	close(c.gone)
	r.mu.Unlock()
}

// Register attaches vfx/1's loop for p to p's client (registering it with the
// pool when vfx/1 is its first protocol). A second client with the same node
// ID on another connection is refused (nil), as the pool itself would.
func (r *clientRegistry) Register(p clientpool.Peer) clientpool.ConnectedBalance {
	n := p.Node()
	if n == nil {
		return nil
	}
	c := r.attach(n, connOf(p), p.FreeClientID(), p, vfxName)
	if c == nil {
		return nil
	}
	return c.flow.connectedBalance()
}

// Unregister detaches vfx/1's loop for p from its client.
func (r *clientRegistry) Unregister(p clientpool.Peer) {
	n := p.Node()
	if n == nil {
		return
	}
	r.mu.Lock()
	c := r.clients[n.ID()]
	ok := c != nil && c.vfx == p && c.registered
	r.mu.Unlock()
	if ok {
		r.detach(c, true, vfxName)
	}
}

// SetCapacity forwards to the pool.
func (r *clientRegistry) SetCapacity(n *enode.Node, reqCap uint64, bias time.Duration, requested bool) (uint64, error) {
	return r.pool.SetCapacity(n, reqCap, bias, requested)
}

// stop refuses new clients and ends every governed protocol with
// DiscQuitting (vfx/1's loops are stopped by the handler).
func (r *clientRegistry) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for _, c := range r.clients {
		c.flow.close(p2p.DiscQuitting)
	}
}

// vfxName is how vfx/1 appears in a client's protocol list.
var vfxName = protocol.Name + "/1"

// freeClientIDOf is the free-client ID of a connection (SPEC 3.5), computed as
// vfx/1 computes it.
func freeClientIDOf(p *p2p.Peer) string {
	var ip net.IP
	if tcp, ok := p.RemoteAddr().(*net.TCPAddr); ok {
		ip = tcp.IP
	}
	return vflux.FreeClientID(p.ID(), ip)
}

// protocolsOf returns the protocols the client id runs now (sorted), also
// while the pool is still deciding on it; nil if there is no such client.
func (r *clientRegistry) protocolsOf(id enode.ID) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[id]
	if c == nil {
		return nil
	}
	protos := make([]string, 0, len(c.protocols))
	for name := range c.protocols {
		protos = append(protos, name)
	}
	sort.Strings(protos)
	return protos
}

// count returns the number of connections the registry tracks, including
// those the pool is still deciding on or unregistering (the pool's Connected
// counts its clients).
func (r *clientRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}

package node

import (
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/protocol"
)

// clientRegistry sits between the protocol handler and the pool (it is the
// handler's protocol.Backend). It remembers each connected client's balance
// handle and current capacity, so the RPC API can report capacities exactly
// and change a connected client's prices, which only the holder of its
// ConnectedBalance can do.
type clientRegistry struct {
	pool  *clientpool.ClientPool
	clock mclock.Clock

	// mu guards clients. It is a leaf lock: no pool method is called while it
	// is held (the pool calls trackedPeer.UpdateCapacity without its own lock,
	// and that takes mu).
	mu      sync.Mutex
	clients map[enode.ID]*trackedPeer
}

var _ protocol.Backend = (*clientRegistry)(nil)

// trackedPeer wraps the protocol's peer so capacity changes are recorded on
// their way to the peer.
type trackedPeer struct {
	clientpool.Peer
	reg *clientRegistry
	id  enode.ID

	// guarded by reg.mu
	balance   clientpool.ConnectedBalance
	capacity  uint64
	connected mclock.AbsTime
}

func newClientRegistry(pool *clientpool.ClientPool, clock mclock.Clock) *clientRegistry {
	return &clientRegistry{pool: pool, clock: clock, clients: make(map[enode.ID]*trackedPeer)}
}

// UpdateCapacity records the new capacity and passes it on; it never blocks.
func (t *trackedPeer) UpdateCapacity(newCap uint64, requested bool) {
	t.reg.mu.Lock()
	t.capacity = newCap
	t.reg.mu.Unlock()
	t.Peer.UpdateCapacity(newCap, requested)
}

// Register registers p with the pool. A second client with the same node ID
// is refused (nil), as the pool itself would.
func (r *clientRegistry) Register(p clientpool.Peer) clientpool.ConnectedBalance {
	n := p.Node()
	if n == nil {
		return nil
	}
	t := &trackedPeer{Peer: p, reg: r, id: n.ID(), connected: r.clock.Now()}
	r.mu.Lock()
	if r.clients[t.id] != nil {
		r.mu.Unlock()
		return nil
	}
	r.clients[t.id] = t
	r.mu.Unlock()

	bal := r.pool.Register(t)

	r.mu.Lock()
	defer r.mu.Unlock()
	if bal == nil {
		delete(r.clients, t.id)
		return nil
	}
	t.balance = bal
	return bal
}

// Unregister unregisters the client registered for p's node ID.
func (r *clientRegistry) Unregister(p clientpool.Peer) {
	n := p.Node()
	if n == nil {
		return
	}
	r.mu.Lock()
	t := r.clients[n.ID()]
	if t == nil || t.Peer != p {
		r.mu.Unlock()
		return
	}
	delete(r.clients, n.ID())
	r.mu.Unlock()
	r.pool.Unregister(t)
}

// SetCapacity forwards to the pool.
func (r *clientRegistry) SetCapacity(n *enode.Node, reqCap uint64, bias time.Duration, requested bool) (uint64, error) {
	return r.pool.SetCapacity(n, reqCap, bias, requested)
}

// connectedClient is a snapshot of one connected client.
type connectedClient struct {
	node      *enode.Node
	freeID    string
	balance   clientpool.ConnectedBalance
	capacity  uint64
	connected mclock.AbsTime
	dropped   bool // the pool asked to disconnect it
}

func (t *trackedPeer) snapshot() connectedClient {
	return connectedClient{node: t.Peer.Node(), freeID: t.Peer.FreeClientID(), balance: t.balance, capacity: t.capacity, connected: t.connected}
}

// get returns the connected client with node ID id.
func (r *clientRegistry) get(id enode.ID) (connectedClient, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.clients[id]
	if t == nil || t.balance == nil {
		return connectedClient{}, false
	}
	return t.snapshot(), true
}

// snapshot returns every connected client, sorted by node ID.
func (r *clientRegistry) snapshot() []connectedClient {
	r.mu.Lock()
	out := make([]connectedClient, 0, len(r.clients))
	for _, t := range r.clients {
		if t.balance != nil {
			out = append(out, t.snapshot())
		}
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].node.ID(), out[j].node.ID()
		return string(a[:]) < string(b[:])
	})
	return out
}

// count returns the number of connected clients.
func (r *clientRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}

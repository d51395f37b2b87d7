package clientpool

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// ErrInvalidFactors: SetClientFactors was given a negative or non-finite
// price factor.
var ErrInvalidFactors = errors.New("price factors must be finite and not negative")

// ClientState is what the pool knows of one connected client at one moment:
// the pool owns every field, and a transport or an RPC API reports from it
// rather than keeping copies of its own (see doc.go, "One owner of client
// state").
type ClientState struct {
	Node   *enode.Node
	FreeID string // its free-client ID (keys the negative balance); "" for none
	// Capacity is what the pool decided for it now (0 while it waits
	// inactive). A delivery of a change to the peer may still be under way.
	Capacity uint64
	// PosBalance and NegBalance are its balances now, including the time
	// cost not settled yet (as GetBalance reads them).
	PosBalance, NegBalance uint64
	// PosFactors and NegFactors are the prices it pays (SetClientFactors).
	PosFactors, NegFactors PriceFactors
	// Connected is how long ago, on the pool's clock, Register accepted it.
	Connected time.Duration
}

// ID is the client's node ID.
func (s ClientState) ID() enode.ID { return s.Node.ID() }

// stateAt reads c's state at the pool clock's now; mu is held.
func (p *ClientPool) stateAt(c *client) ClientState {
	now := p.clock.Now()
	b := c.snapAt(now)
	return ClientState{
		Node:       c.node,
		FreeID:     c.freeID,
		Capacity:   c.capacity,
		PosBalance: b.pos,
		NegBalance: b.neg,
		PosFactors: c.posF,
		NegFactors: c.negF,
		Connected:  time.Duration(now - c.since),
	}
}

// ClientInfo returns the state of the registered client with node ID id. A
// client is registered from its Register until its Unregister, also after the
// pool told it to Disconnect (its balances are live until it leaves). It
// returns false for any other ID, and after Stop.
func (p *ClientPool) ClientInfo(id enode.ID) (ClientState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.clients[id]
	if c == nil || p.stopped {
		return ClientState{}, false
	}
	return p.stateAt(c), true
}

// Connected returns the number of registered clients (active, waiting, and
// told to Disconnect but not unregistered yet); 0 after Stop.
func (p *ClientPool) Connected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return 0
	}
	return len(p.clients)
}

// ConnectedClients returns the states of up to maxCount registered clients,
// the lowest node IDs first. The IDs are sorted without the pool lock, so a
// large pool is not held up by an operator's listing; a client that left in
// between is left out (and the next one taken), one that came in between is
// not listed.
func (p *ClientPool) ConnectedClients(maxCount int) []ClientState {
	if maxCount <= 0 {
		return nil
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	ids := make([]enode.ID, 0, len(p.clients))
	for id := range p.clients {
		ids = append(ids, id)
	}
	p.mu.Unlock()

	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	out := make([]ClientState, 0, min(maxCount, len(ids)))
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if len(out) == maxCount || p.stopped {
			break
		}
		if c := p.clients[id]; c != nil {
			out = append(out, p.stateAt(c))
		}
	}
	return out
}

// SetClientFactors changes the price factors of the registered client with
// node ID id from now on, as its ConnectedBalance's SetPriceFactors does (the
// time cost so far is charged at the old prices, its priority re-evaluated at
// the new ones). It returns ErrNotConnected for an ID that is not registered
// (or after Stop) and ErrInvalidFactors for a negative or non-finite factor;
// either changes nothing.
func (p *ClientPool) SetClientFactors(id enode.ID, pos, neg PriceFactors) error {
	if !pos.valid() || !neg.valid() {
		return fmt.Errorf("%w: positive %+v, negative %+v", ErrInvalidFactors, pos, neg)
	}
	p.mu.Lock()
	c := p.clients[id]
	stopped := p.stopped
	p.mu.Unlock()
	if c == nil || stopped {
		return ErrNotConnected
	}
	// A client that leaves before this takes the lock only gets prices it no
	// longer pays: SetPriceFactors changes nothing else for an unregistered
	// client.
	c.SetPriceFactors(pos, neg)
	return nil
}

// capQueryCounts counts the capacity queries the pool answered (Handle's
// "cq"), for CapacityQueryCounts.
type capQueryCounts struct {
	zero, nonzero atomic.Uint64
}

// count counts one answer: zero when no amount asked about buys any capacity
// (the client would be turned away whatever it paid of those amounts).
func (q *capQueryCounts) count(reply []uint64) {
	for _, c := range reply {
		if c != 0 {
			q.nonzero.Add(1)
			return
		}
	}
	q.zero.Add(1)
}

// CapacityQueryCounts returns how many capacity queries the pool answered
// since it was created: zero counts answers where none of the amounts asked
// about buys any capacity (including every answer while not synced), nonzero
// the others. Requests it did not answer (malformed, a balance that cannot be
// read, after Stop) are in neither.
func (p *ClientPool) CapacityQueryCounts() (zero, nonzero uint64) {
	return p.cqCounts.zero.Load(), p.cqCounts.nonzero.Load()
}

package protocol

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/p2ptest"
)

// A peer holds a p2p slot from the moment it connects, so it is a client of
// the pool from then on: the pool can rank it and, if it must make room,
// disconnect it before it ever sends its Handshake.
func TestAPeerStillInItsHandshakeIsAClientThePoolCanEvict(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	registered := make(chan clientpool.Peer, 1)
	pool.onRegister = func(p clientpool.Peer) { registered <- p }
	h := newTestHandler(pool, func(c *Config) { c.HandshakeTimeout = time.Hour })
	m := p2ptest.NewMsgTester(t, h.Protocol(), enode.ID{4})
	m.Expect(HandshakeMsg, h.Handshake())

	var p clientpool.Peer
	select {
	case p = <-registered:
	case <-time.After(netTimeout):
		t.Fatal("a peer that has not sent its Handshake is not registered with the pool")
	}
	if pool.count() != 1 {
		t.Fatalf("%d registered, want the peer in its handshake", pool.count())
	}
	p.Disconnect() // the pool needs the slot
	m.ExpectDisconnect(p2p.DiscTooManyPeers)
	pool.mu.Lock()
	unregs := pool.unregs
	pool.mu.Unlock()
	if pool.count() != 0 || unregs != 1 || h.PeerCount() != 0 {
		t.Fatalf("after the eviction: %d registered, %d unregistered, %d loops; want 0, 1, 0", pool.count(), unregs, h.PeerCount())
	}
}

// Capacity the pool grants while the peer is still in its handshake is sent
// right after the handshake, never before it.
func TestCapacityGrantedDuringTheHandshakeFollowsIt(t *testing.T) {
	pool := newFakePool(testMinCap, 10) // grants minCap inside Register
	h := newTestHandler(pool, func(c *Config) { c.HandshakeTimeout = time.Hour })
	m := p2ptest.NewMsgTester(t, h.Protocol(), enode.ID{5})
	m.Expect(HandshakeMsg, h.Handshake())
	m.Send(HandshakeMsg, Handshake{Version: Version})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
}

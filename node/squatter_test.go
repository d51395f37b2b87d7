package node

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/protocol"
)

// startSquatter connects a peer that opens RLPx with vfx/1 and then never
// sends the vfx Handshake (it reads and discards until the node hangs up). It
// dials from the loopback address from, so each squatter looks like its own
// host. It returns the squatter's node ID.
func startSquatter(t *testing.T, n *testNode, from string) enode.ID {
	t.Helper()
	silent := p2p.Protocol{Name: protocol.Name, Version: protocol.Version, Length: protocol.Length,
		Run: func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
			for {
				msg, err := rw.ReadMsg()
				if err != nil {
					return err
				}
				msg.Discard()
			}
		}}
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{Protocols: []p2p.Protocol{silent},
		NoDiscovery: true, NoListen: true, DialFrom: from, Name: "squatter"})
	srv.AddPeer(n.stack.Server().Self())
	t.Cleanup(func() { srv.RemovePeer(n.stack.Server().Self()) })
	return srv.Self().ID()
}

// With maxclients 1 and maxinactive 2 the node has 3 peer slots, one kept free
// for newcomers. Peers that never finish the vfx handshake used to hold slots
// unseen by the pool (for the 5 s handshake timeout), so a paid client found no
// slot ("too many peers"). Now they are clients of the pool from the moment
// they connect: ranked with the others, the lowest goes with DiscTooManyPeers
// and a slot stays free, so the paid client gets in and gets capacity.
func TestHandshakeSquattersCannotLockAPaidClientOut(t *testing.T) {
	tests := []struct {
		name      string
		free      int // free clients that finish the handshake first
		squatters int
	}{
		{"an active and a waiting free client, then a squatter", 2, 1},
		{"an active free client, then two squatters", 1, 2},
		{"three squatters", 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(1)
			cfg.MaxInactive = 2
			n := startNode(t, cfg, "", true)
			srv := n.stack.Server()
			if srv.MaxPeers != 3 {
				t.Fatalf("MaxPeers = %d, want maxclients + maxinactive = 3", srv.MaxPeers)
			}
			w := p2ptest.Watch(t, srv)
			for i := 0; i < tt.free; i++ {
				c := mustDial(t, n)
				if i == 0 {
					waitCapacity(t, c, cfg.MinCap)
				}
			}
			eventually(t, "the free clients registered", func() bool { return n.svc.clients.count() == tt.free })

			var squatters []enode.ID
			for i := 0; i < tt.squatters; i++ {
				id := startSquatter(t, n, fmt.Sprintf("127.0.0.%d", 2+i))
				w.WaitAdd(id, netTimeout)
				squatters = append(squatters, id)
			}
			// Every squatter is a client of the pool; when it left no slot
			// free, the lowest-ranked client was dropped at once. Wait for
			// that, but only for part of the handshake timeout: a slot freed
			// by a squatter timing out is the old behaviour, not the fix (then
			// the dial below fails with "too many peers").
			waitUntil(params.HandshakeTimeout/2, func() bool { return srv.PeerCount() < srv.MaxPeers })

			paid, err := newClientKey(t)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := n.api.AddBalance(context.Background(), paid.Self().ID().String(), big.NewInt(1e15)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
			defer cancel()
			cl, err := paid.peers.Dial(ctx, paid.Server, srv.Self())
			if err != nil {
				t.Fatalf("the paid client was not admitted while %d squatters were connected: %v", tt.squatters, err)
			}
			t.Cleanup(cl.Close)
			waitCapacity(t, &testClient{srv: paid.Server, cl: cl}, cfg.MinCap)
			t.Logf("paid client admitted with capacity %d after %v", cl.Capacity(), time.Since(start))

			// At least one squatter was disconnected as the lowest-ranked
			// client, and none had to time out first.
			isSquatter := make(map[enode.ID]bool)
			for _, id := range squatters {
				isSquatter[id] = true
			}
			var tooMany int
			for _, ev := range w.Events() {
				if ev.Type != p2p.PeerEventTypeDrop || !isSquatter[ev.Peer] {
					continue
				}
				switch ev.Error {
				case p2p.DiscTooManyPeers.Error():
					tooMany++
				case p2p.DiscReadTimeout.Error():
					t.Errorf("squatter %x timed out before the paid client got in", ev.Peer[:4])
				}
			}
			if tooMany == 0 {
				t.Fatalf("no squatter was disconnected with %v; events: %v", p2p.DiscTooManyPeers, w.Events())
			}
			eventually(t, "a free peer slot after the paid client's arrival", func() bool { return srv.PeerCount() < srv.MaxPeers })
		})
	}
}

// waitUntil polls cond until it holds or d has passed, and reports whether it
// held.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

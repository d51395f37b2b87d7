package protocol

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/params"
)

// netTimeout bounds every network wait of these tests; passing tests never
// come near it.
const netTimeout = 20 * time.Second

// vfxServer is a serving node: a p2p.Server on 127.0.0.1 with the Handler.
type vfxServer struct {
	srv     *p2p.Server
	h       *Handler
	watcher *p2ptest.Watcher
}

func startVfxServer(t testing.TB, cfg Config, maxPeers int) *vfxServer {
	t.Helper()
	h := NewHandler(cfg)
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{
		Protocols: []p2p.Protocol{h.Protocol()},
		MaxPeers:  maxPeers,
		NoDial:    true,
		Name:      "vfx-server",
	})
	t.Cleanup(h.Stop) // runs before the p2p server stops, as in the node
	return &vfxServer{srv: srv, h: h, watcher: p2ptest.Watch(t, srv)}
}

// vfxClient is a light client node (RLPx only, no listener, no discovery).
type vfxClient struct {
	srv   *p2p.Server
	peers *ClientPeers
}

func startVfxClient(t testing.TB) *vfxClient {
	t.Helper()
	cp := NewClientPeers()
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{
		Protocols:   []p2p.Protocol{cp.Protocol()},
		MaxPeers:    4,
		NoDiscovery: true,
		NoListen:    true,
		Name:        "vfx-client",
	})
	return &vfxClient{srv: srv, peers: cp}
}

func (c *vfxClient) id() enode.ID { return c.srv.Self().ID() }

func (c *vfxClient) dial(t testing.TB, s *vfxServer) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	cl, err := c.peers.Dial(ctx, c.srv, s.srv.Self())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitDone waits for a client's connection to end and returns the reason.
func waitDone(t testing.TB, cl *Client) error {
	t.Helper()
	select {
	case <-cl.Done():
		return cl.DisconnectReason()
	case <-time.After(netTimeout):
		t.Fatal("client connection did not end")
		return nil
	}
}

// waitUpdate waits for the next capacity update.
func waitUpdate(t testing.TB, cl *Client) CapacityUpdate {
	t.Helper()
	select {
	case u := <-cl.Updates():
		return u
	case <-cl.Done():
		t.Fatalf("disconnected (%v) while waiting for a capacity update", cl.DisconnectReason())
	case <-time.After(netTimeout):
		t.Fatal("no capacity update")
	}
	return CapacityUpdate{}
}

// startRawClient connects a scripted client to s over real RLPx: script runs
// as the client's "vfx"/1 Run, then the client reads until the server hangs up.
func startRawClient(t testing.TB, s *vfxServer, script func(rw p2p.MsgReadWriter) error) enode.ID {
	t.Helper()
	proto := p2p.Protocol{Name: Name, Version: Version, Length: Length,
		Run: func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
			if err := script(rw); err != nil {
				return err
			}
			for {
				msg, err := rw.ReadMsg()
				if err != nil {
					return err
				}
				msg.Discard()
			}
		}}
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{Protocols: []p2p.Protocol{proto}, NoDiscovery: true, NoListen: true})
	srv.AddPeer(s.srv.Self())
	t.Cleanup(func() { srv.RemovePeer(s.srv.Self()) })
	return srv.Self().ID()
}

func sendBytes(rw p2p.MsgWriter, code uint64, b []byte) error {
	return rw.WriteMsg(p2p.Msg{Code: code, Size: uint32(len(b)), Payload: bytes.NewReader(b)})
}

func TestOverRLPxBadClientsEndWithTheRightReasonAndLeaveNoRegistration(t *testing.T) {
	hello := func(rw p2p.MsgReadWriter) error { return p2p.Send(rw, HandshakeMsg, &Handshake{Version: Version}) }
	tests := []struct {
		name   string
		script func(rw p2p.MsgReadWriter) error
		want   p2p.DiscReason
	}{
		{"a client that never says hello times out", func(rw p2p.MsgReadWriter) error { return nil }, p2p.DiscReadTimeout},
		{"a client of another version is a protocol error", func(rw p2p.MsgReadWriter) error {
			return p2p.Send(rw, HandshakeMsg, &Handshake{Version: 7})
		}, p2p.DiscProtocolError},
		{"garbage bytes are a protocol error", func(rw p2p.MsgReadWriter) error {
			return sendBytes(rw, HandshakeMsg, []byte("\xff\xfe garbage \x00\x01"))
		}, p2p.DiscProtocolError},
		{"an oversize message is a protocol error", func(rw p2p.MsgReadWriter) error {
			if err := hello(rw); err != nil {
				return err
			}
			return sendBytes(rw, VfluxRequestMsg, make([]byte, MaxMessageSize+1))
		}, p2p.DiscProtocolError},
		{"an unknown code is a protocol error", func(rw p2p.MsgReadWriter) error {
			if err := hello(rw); err != nil {
				return err
			}
			return p2p.Send(rw, Length-1, uint(1))
		}, p2p.DiscProtocolError},
		{"a server message from a client is a protocol error", func(rw p2p.MsgReadWriter) error {
			if err := hello(rw); err != nil {
				return err
			}
			return p2p.Send(rw, BusyMsg, &Busy{})
		}, p2p.DiscProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startRealNode(t, realNodeConfig{maxCount: 10, maxCap: 10 * testMinCap, allowance: time.Minute,
				handshakeTimeout: 300 * time.Millisecond, pos: defaultFactors, neg: defaultFactors})
			events := make(chan clientpool.Event, 10)
			sub := n.pool.SubscribeEvents(events)
			defer sub.Unsubscribe()
			id := startRawClient(t, n.vfxServer, tt.script)
			n.watcher.ExpectDrop(id, tt.want, netTimeout)
			if count, _ := n.pool.Active(); count != 0 || n.pool.Inactive() != 0 || n.h.PeerCount() != 0 {
				t.Fatalf("after the drop: %d active, %d inactive, %d peer loops", count, n.pool.Inactive(), n.h.PeerCount())
			}
			// Every peer is a client of the pool from the moment it connects,
			// before its handshake: registered, then unregistered.
			waitPoolEvent(t, events, clientpool.EventConnected, id)
			waitPoolEvent(t, events, clientpool.EventDisconnected, id)
		})
	}
}

func TestOverRLPxAServerMeetingAServerIsUseless(t *testing.T) {
	poolA, poolB := newFakePool(testMinCap, 10), newFakePool(testMinCap, 10)
	a := startVfxServer(t, Config{Pool: poolA}, 10)
	hb := NewHandler(Config{Pool: poolB})
	b := p2ptest.StartServer(t, p2ptest.ServerConfig{Protocols: []p2p.Protocol{hb.Protocol()}, NoDiscovery: true})
	t.Cleanup(hb.Stop)
	wb := p2ptest.Watch(t, b)
	b.AddPeer(a.srv.Self())
	t.Cleanup(func() { b.RemovePeer(a.srv.Self()) })
	a.watcher.ExpectDrop(b.Self().ID(), p2p.DiscUselessPeer, netTimeout)
	wb.WaitDrop(a.srv.Self().ID(), netTimeout)
	// Each counted the other as a client while the handshake ran; neither
	// keeps it.
	if poolA.count() != 0 || poolB.count() != 0 {
		t.Fatal("a server stayed registered with another server")
	}
}

func TestOverRLPxAClientMeetingAClientIsUseless(t *testing.T) {
	c1 := startVfxClient(t)
	// A listening node that answers as a client would.
	asClient := p2p.Protocol{Name: Name, Version: Version, Length: Length,
		Run: func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
			if err := p2p.Send(rw, HandshakeMsg, &Handshake{Version: Version}); err != nil {
				return err
			}
			for {
				msg, err := rw.ReadMsg()
				if err != nil {
					return err
				}
				msg.Discard()
			}
		}}
	listener := p2ptest.StartServer(t, p2ptest.ServerConfig{Protocols: []p2p.Protocol{asClient}, NoDiscovery: true})
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	_, err := c1.peers.Dial(ctx, c1.srv, listener.Self())
	if err == nil {
		t.Fatal("dialing a client succeeded")
	}
	if !errorsIs(err, p2p.DiscUselessPeer) {
		t.Fatalf("dial error %v, want %v", err, p2p.DiscUselessPeer)
	}
}

func TestOverRLPxHandshakeGivesCapacityAndTheClientLeavesCleanly(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	s := startVfxServer(t, Config{Pool: pool, MinCap: testMinCap}, 10)
	c := startVfxClient(t)
	cl := c.dial(t, s)
	if u := waitUpdate(t, cl); u != (CapacityUpdate{Capacity: testMinCap}) {
		t.Fatalf("first update %+v", u)
	}
	if cl.Capacity() != testMinCap || cl.ServerHandshake() != s.h.Handshake() {
		t.Fatalf("capacity %d, handshake %+v", cl.Capacity(), cl.ServerHandshake())
	}
	// The server sees the client's loopback address: its free ID is the node ID.
	if got := pool.peer(c.id()).FreeClientID(); got != c.id().String() {
		t.Fatalf("FreeClientID %q, want the node ID (loopback)", got)
	}
	cl.Close()
	if r := waitDone(t, cl); r != p2p.DiscRequested {
		t.Fatalf("client saw %v, want %v", r, p2p.DiscRequested)
	}
	s.watcher.ExpectDrop(c.id(), p2p.DiscRequested, netTimeout)
	if pool.count() != 0 {
		t.Fatal("registration left behind")
	}
	// The static entry is gone: the client does not come back.
	if c.srv.PeerCount() != 0 {
		t.Fatal("client still has peers")
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestTheServerRecordCarriesTheVfxEntry(t *testing.T) {
	s := startVfxServer(t, Config{Pool: newFakePool(testMinCap, 1)}, 10)
	var e enrEntry
	if err := s.srv.Self().Load(&e); err != nil {
		t.Fatalf("server record has no %q entry: %v", params.ENRKey, err)
	}
	if e.Version != Version {
		t.Fatalf("%q entry says version %d", params.ENRKey, e.Version)
	}
	if info, ok := s.srv.NodeInfo().Protocols[Name].(*Handshake); !ok || *info != s.h.Handshake() {
		t.Fatalf("node info %+v, want the server's Handshake", s.srv.NodeInfo().Protocols[Name])
	}
}

func TestOverRLPxStopDisconnectsEveryClientWithQuitting(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	s := startVfxServer(t, Config{Pool: pool, MinCap: testMinCap}, 10)
	var cls []*Client
	for i := 0; i < 3; i++ {
		cl := startVfxClient(t).dial(t, s)
		waitUpdate(t, cl)
		cls = append(cls, cl)
	}
	s.h.Stop()
	for _, cl := range cls {
		if r := waitDone(t, cl); r != p2p.DiscQuitting {
			t.Fatalf("client saw %v, want %v", r, p2p.DiscQuitting)
		}
	}
	if pool.count() != 0 || s.h.PeerCount() != 0 {
		t.Fatalf("after Stop: %d registered, %d loops", pool.count(), s.h.PeerCount())
	}
	// A client arriving after Stop is turned away at once.
	c := startVfxClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	if _, err := c.peers.Dial(ctx, c.srv, s.srv.Self()); !errors.Is(err, p2p.DiscQuitting) {
		t.Fatalf("dial after Stop: %v, want %v", err, p2p.DiscQuitting)
	}
}

package protocol

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/vflux-net/vflux/p2ptest"
)

// pipeHandshakeTimeout is generous so a loaded CI machine running -race never
// times out a handshake the test does complete; tests about the timeout itself
// pass their own to pipeClientTimeout.
const pipeHandshakeTimeout = 2 * time.Second

// pipeClient runs the client side over a message pipe as if Dial had been
// called for the server id; the test plays the server.
func pipeClient(t *testing.T, id enode.ID) (*Client, *p2ptest.MsgTester) {
	t.Helper()
	return pipeClientTimeout(t, id, pipeHandshakeTimeout)
}

// pipeClientTimeout is pipeClient with the given handshake timeout.
func pipeClientTimeout(t *testing.T, id enode.ID, timeout time.Duration) (*Client, *p2ptest.MsgTester) {
	t.Helper()
	cp := NewClientPeers()
	cp.HandshakeTimeout = timeout
	cl := newClient(cp, nil, enode.SignNull(new(enr.Record), id))
	cp.dials[id] = cl
	m := p2ptest.NewMsgTester(t, cp.Protocol(), id)
	m.Expect(HandshakeMsg, Handshake{Version: Version})
	return cl, m
}

var serverHello = Handshake{Version: Version, Server: true, MinCap: 1000, BufferSecs: 5, CostBase: 80, CostPerKB: 100}

func TestClientUpdatesAreCoalescedAndNeverBlockTheLoop(t *testing.T) {
	cl, m := pipeClient(t, enode.ID{1})
	m.Send(HandshakeMsg, serverHello)
	// Nobody reads Updates while the server sends many: the loop keeps going.
	for i := uint64(1); i <= 100; i++ {
		m.Send(CapacityUpdateMsg, CapacityUpdate{Capacity: i * 10, Requested: i == 50})
	}
	if got := cl.ServerHandshake(); got != serverHello {
		t.Fatalf("handshake %+v", got)
	}
	// Two replies to unknown IDs (ignored) after the updates: once the reader
	// has taken the second, the loop has taken the first, so it has processed
	// every update.
	m.Send(VfluxReplyMsg, VfluxReply{ReqID: 998, Replies: []byte{0xc0}})
	m.Send(VfluxReplyMsg, VfluxReply{ReqID: 999, Replies: []byte{0xc0}})
	select {
	case u := <-cl.Updates():
		if u != (CapacityUpdate{Capacity: 1000, Requested: true}) {
			t.Fatalf("coalesced update %+v, want the latest capacity with Requested OR-ed", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update")
	}
	if cl.Capacity() != 1000 {
		t.Fatalf("Capacity() = %d", cl.Capacity())
	}
	select {
	case u := <-cl.Updates():
		t.Fatalf("second update %+v after coalescing", u)
	default:
	}
}

func TestClientSideBadServersEndWithTheRightReason(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration // 0: pipeHandshakeTimeout
		script  func(m *p2ptest.MsgTester)
		want    p2p.DiscReason
	}{
		{"a silent server times out", 200 * time.Millisecond, func(m *p2ptest.MsgTester) {}, p2p.DiscReadTimeout},
		{"a client answering as a client is useless", 0, func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, Handshake{Version: Version})
		}, p2p.DiscUselessPeer},
		{"another version is a protocol error", 0, func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, Handshake{Version: 9, Server: true})
		}, p2p.DiscProtocolError},
		{"a client message from the server is a protocol error", 0, func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, serverHello)
			m.Send(VfluxRequestMsg, VfluxRequest{ReqID: 1, Requests: []byte{0xc0}})
		}, p2p.DiscProtocolError},
		{"an undecodable update is a protocol error", 0, func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, serverHello)
			m.SendRaw(CapacityUpdateMsg, []byte{0x01, 0x02})
		}, p2p.DiscProtocolError},
		{"an unknown code is a protocol error", 0, func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, serverHello)
			m.Send(Length-1, uint(0))
		}, p2p.DiscProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = pipeHandshakeTimeout
			}
			_, m := pipeClientTimeout(t, enode.ID{2}, timeout)
			tt.script(m)
			m.ExpectDisconnect(tt.want)
		})
	}
}

func TestClientPeersRefuseAConnectionTheyDidNotDial(t *testing.T) {
	m := p2ptest.NewMsgTester(t, NewClientPeers().Protocol(), enode.ID{3})
	m.ExpectDisconnect(p2p.DiscUselessPeer)
}

package p2ptest

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

type ping struct{ N uint64 }

// echoProtocol answers code 0 {N} with code 1 {N+1} and disconnects with
// DiscUselessPeer on any other code.
var echoProtocol = p2p.Protocol{
	Name:    "echo",
	Version: 1,
	Length:  3,
	Run: func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
		for {
			msg, err := rw.ReadMsg()
			if err != nil {
				return err
			}
			if msg.Code != 0 {
				msg.Discard()
				return p2p.DiscUselessPeer
			}
			var v ping
			if err := msg.Decode(&v); err != nil {
				return p2p.DiscProtocolError
			}
			if err := p2p.Send(rw, 1, ping{v.N + 1}); err != nil {
				return err
			}
		}
	},
}

func TestMsgTesterSendsExpectsAndSeesTheDisconnectReason(t *testing.T) {
	m := NewMsgTester(t, echoProtocol, enode.ID{1})
	m.Send(0, ping{41})
	m.Expect(1, ping{42})
	var got ping
	m.Send(0, ping{1})
	m.ExpectDecode(1, &got)
	if got.N != 2 {
		t.Fatalf("decoded %d, want 2", got.N)
	}
	m.SendRaw(0, []byte{0xff, 0x00})
	m.ExpectDisconnect(p2p.DiscProtocolError)
}

func TestMsgTesterRunReturnsWhenThePipeCloses(t *testing.T) {
	m := NewMsgTester(t, echoProtocol, enode.ID{2})
	m.Close()
	select {
	case <-m.Done():
	case <-time.After(DefaultTimeout):
		t.Fatal("Run did not return after the pipe closed")
	}
	if err, _ := m.RunErr(); err != p2p.ErrPipeClosed {
		t.Fatalf("Run returned %v, want %v", err, p2p.ErrPipeClosed)
	}
}

func TestNetworkConnectsServersAndReportsTheDropReason(t *testing.T) {
	srvs := StartServers(t, 2, func(i int) ServerConfig {
		return ServerConfig{Protocols: []p2p.Protocol{echoProtocol}}
	})
	a, b := srvs[0], srvs[1]
	wa, wb := Watch(t, a), Watch(t, b)
	Connect(t, a, b, 10*time.Second)
	if a.PeerCount() != 1 || b.PeerCount() != 1 {
		t.Fatalf("peer counts %d, %d; want 1, 1", a.PeerCount(), b.PeerCount())
	}
	a.RemovePeer(b.Self())
	wa.ExpectDrop(b.Self().ID(), p2p.DiscRequested, 10*time.Second)
	r, text := wb.WaitDrop(a.Self().ID(), 10*time.Second)
	if r != p2p.DiscRequested {
		t.Fatalf("remote saw drop %q, want %q", text, p2p.DiscRequested)
	}
}

func TestTalkRequestReachesTheRegisteredHandler(t *testing.T) {
	srvs := StartServers(t, 2, func(i int) ServerConfig { return ServerConfig{} })
	srvs[1].DiscoveryV5().RegisterTalkHandler("tst", func(n *enode.Node, addr *net.UDPAddr, req []byte) []byte {
		return append([]byte("re:"), req...)
	})
	resp, err := TalkRequest(t, srvs[0], srvs[1], "tst", []byte("hi"))
	if err != nil {
		t.Fatalf("TalkRequest: %v", err)
	}
	if !bytes.Equal(resp, []byte("re:hi")) {
		t.Fatalf("answer %q, want %q", resp, "re:hi")
	}
	resp, err = TalkRequest(t, srvs[0], srvs[1], "unknown", []byte("hi"))
	if err != nil || len(resp) != 0 {
		t.Fatalf("unknown protocol id answered %q, %v; want empty", resp, err)
	}
}

func TestParseDiscReasonRoundTrips(t *testing.T) {
	for _, r := range []p2p.DiscReason{p2p.DiscRequested, p2p.DiscProtocolError, p2p.DiscTooManyPeers, p2p.DiscReadTimeout, p2p.DiscSubprotocolError} {
		got, ok := ParseDiscReason(r.Error())
		if !ok || got != r {
			t.Errorf("ParseDiscReason(%q) = %v, %v", r.Error(), got, ok)
		}
	}
	if _, ok := ParseDiscReason("EOF"); ok {
		t.Error("ParseDiscReason(\"EOF\") claims a reason")
	}
}

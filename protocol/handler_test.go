package protocol

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

const testMinCap = 1000

func newTestHandler(pool Backend, mods ...func(*Config)) *Handler {
	cfg := Config{Pool: pool, Requests: &echoServer{}, MinCap: testMinCap, InactiveAllowance: time.Minute}
	for _, m := range mods {
		m(&cfg)
	}
	return NewHandler(cfg)
}

// connectPipe runs the handler for a client over a message pipe and completes
// the handshake from the client side.
func connectPipe(t *testing.T, h *Handler, id enode.ID) *p2ptest.MsgTester {
	t.Helper()
	m := p2ptest.NewMsgTester(t, h.Protocol(), id)
	m.Expect(HandshakeMsg, h.Handshake())
	m.Send(HandshakeMsg, Handshake{Version: Version})
	return m
}

func TestHandshakeSucceedsAndTheClientGetsMinCap(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	h := newTestHandler(pool)
	m := p2ptest.NewMsgTester(t, h.Protocol(), enode.ID{1})
	hs := m.Expect(HandshakeMsg, Handshake{Version: 1, Server: true, MinCap: testMinCap,
		BufferSecs: params.BufferSecs, CostBase: params.RequestCostBase, CostPerKB: params.RequestCostPerKB}).(Handshake)
	if hs.MinCap != testMinCap {
		t.Fatalf("handshake MinCap %d", hs.MinCap)
	}
	m.Send(HandshakeMsg, Handshake{Version: Version})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
	if pool.count() != 1 || h.PeerCount() != 1 {
		t.Fatalf("registered %d, peer loops %d; want 1, 1", pool.count(), h.PeerCount())
	}
	if got := pool.peer(enode.ID{1}).FreeClientID(); got != (enode.ID{1}).String() {
		t.Fatalf("FreeClientID of a pipe peer is %q, want the node ID in hex", got)
	}
}

func TestBadInputEndsWithTheRightReasonAndLeavesNoRegistration(t *testing.T) {
	valid := Handshake{Version: Version}
	big := make([]byte, MaxMessageSize+1)
	tests := []struct {
		name   string
		script func(m *p2ptest.MsgTester)
		want   p2p.DiscReason
	}{
		{"a silent client times out", func(m *p2ptest.MsgTester) {}, p2p.DiscReadTimeout},
		{"another version is a protocol error", func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, Handshake{Version: 2})
		}, p2p.DiscProtocolError},
		{"a server meeting a server is useless", func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, Handshake{Version: Version, Server: true})
		}, p2p.DiscUselessPeer},
		{"a garbage handshake is a protocol error", func(m *p2ptest.MsgTester) {
			m.SendRaw(HandshakeMsg, []byte{0xde, 0xad, 0xbe, 0xef})
		}, p2p.DiscProtocolError},
		{"a request before the handshake is a protocol error", func(m *p2ptest.MsgTester) {
			m.Send(VfluxRequestMsg, VfluxRequest{ReqID: 1, Requests: []byte{0xc0}})
		}, p2p.DiscProtocolError},
		{"an oversize message is a protocol error", func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, valid)
			m.SendRaw(VfluxRequestMsg, big)
		}, p2p.DiscProtocolError},
		{"an unknown code is a protocol error", func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, valid)
			m.Send(0x07, uint64(1))
		}, p2p.DiscProtocolError},
		{"a server message from the client is a protocol error", func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, valid)
			m.Send(CapacityUpdateMsg, CapacityUpdate{Capacity: 1})
		}, p2p.DiscProtocolError},
		{"a second handshake is a protocol error", func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, valid)
			m.Send(HandshakeMsg, valid)
		}, p2p.DiscProtocolError},
		{"an undecodable vflux request is a protocol error", func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, valid)
			m.SendRaw(VfluxRequestMsg, []byte{0xc1, 0xff})
		}, p2p.DiscProtocolError},
		{"an undecodable capacity request is a protocol error", func(m *p2ptest.MsgTester) {
			m.Send(HandshakeMsg, valid)
			m.Send(CapacityRequestMsg, []interface{}{[]uint{1}, uint(2), uint(3)})
		}, p2p.DiscProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newFakePool(testMinCap, 10)
			h := newTestHandler(pool, func(c *Config) { c.HandshakeTimeout = 100 * time.Millisecond })
			m := p2ptest.NewMsgTester(t, h.Protocol(), enode.ID{2})
			m.Expect(HandshakeMsg, h.Handshake())
			tt.script(m)
			m.ExpectDisconnect(tt.want)
			if pool.count() != 0 || h.PeerCount() != 0 {
				t.Fatalf("after disconnect: %d registered, %d peer loops", pool.count(), h.PeerCount())
			}
		})
	}
}

func TestCapacityUpdatesAreCoalescedLatestWinsRequestedOred(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	pool.onRegister = func(p clientpool.Peer) {
		p.UpdateCapacity(5000, true)
		p.UpdateCapacity(3000, false)
	}
	h := newTestHandler(pool)
	m := connectPipe(t, h, enode.ID{3})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: 3000, Requested: true})
	// Nothing else was queued: the next message answers our request.
	m.Send(VfluxRequestMsg, VfluxRequest{ReqID: 9, Requests: []byte{0xc0}})
	var r VfluxReply
	m.ExpectDecode(VfluxReplyMsg, &r)
	if r.ReqID != 9 {
		t.Fatalf("reply ID %d", r.ReqID)
	}
}

func TestPoolCallbacksNeverBlockWhileTheClientDoesNotRead(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	registered := make(chan clientpool.Peer, 1)
	pool.onRegister = func(p clientpool.Peer) { registered <- p }
	h := newTestHandler(pool)
	m := connectPipe(t, h, enode.ID{4})
	// The client reads nothing: the loop is stuck writing the first update.
	var p clientpool.Peer
	select {
	case p = <-registered:
	case <-time.After(5 * time.Second):
		t.Fatal("client not registered")
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10000; i++ {
			p.UpdateCapacity(uint64(i), i == 17)
		}
		p.Disconnect()
		p.Disconnect() // twice is harmless
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("UpdateCapacity/Disconnect blocked while the peer loop was busy")
	}
	m.ExpectDisconnect(p2p.DiscTooManyPeers)
	if pool.count() != 0 {
		t.Fatal("evicted client still registered")
	}
}

func TestCapacityRequestRepliesAfterTheUpdateItCaused(t *testing.T) {
	errBroken := errors.New("pool on fire")
	tests := []struct {
		name       string
		setCap     func(p clientpool.Peer, req uint64) (uint64, error)
		wantUpdate *CapacityUpdate
		want       CapacityReply
	}{
		{"a full grant is announced, then confirmed",
			func(p clientpool.Peer, req uint64) (uint64, error) { p.UpdateCapacity(req, true); return req, nil },
			&CapacityUpdate{Capacity: 8000, Requested: true}, CapacityReply{ReqID: 1, Capacity: 8000, Code: CapOK}},
		{"a partial grant is OK with less capacity",
			func(p clientpool.Peer, req uint64) (uint64, error) {
				p.UpdateCapacity(req/2, true)
				return req / 2, nil
			},
			&CapacityUpdate{Capacity: 4000, Requested: true}, CapacityReply{ReqID: 1, Capacity: 4000, Code: CapOK}},
		{"a free client gets no priority",
			func(p clientpool.Peer, req uint64) (uint64, error) { return 0, clientpool.ErrNoPriority },
			nil, CapacityReply{ReqID: 1, Capacity: testMinCap, Code: CapNoPriority, Msg: clientpool.ErrNoPriority.Error()}},
		{"an inactive client is told so",
			func(p clientpool.Peer, req uint64) (uint64, error) { return 0, nil },
			nil, CapacityReply{ReqID: 1, Capacity: 0, Code: CapInactive, Msg: "inactive: capacity is granted on activation"}},
		{"other failures say what",
			func(p clientpool.Peer, req uint64) (uint64, error) { return 0, errBroken },
			nil, CapacityReply{ReqID: 1, Capacity: testMinCap, Code: CapError, Msg: errBroken.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newFakePool(testMinCap, 10)
			pool.setCap = tt.setCap
			h := newTestHandler(pool)
			m := connectPipe(t, h, enode.ID{5})
			m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
			m.Send(CapacityRequestMsg, CapacityRequest{ReqID: 1, Capacity: 8000, BiasSecs: 60})
			if tt.wantUpdate != nil {
				m.Expect(CapacityUpdateMsg, *tt.wantUpdate)
			}
			m.Expect(CapacityReplyMsg, tt.want)
			if costs := pool.servedCosts(); len(costs) != 1 || costs[0] != params.RequestCostBase {
				t.Fatalf("charged %v, want one CostBase", costs)
			}
		})
	}
}

func TestARefusedCapacityRequestRepliesWithTheCapacityAfterTheCut(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	var refuse atomic.Bool
	pool.setCap = func(p clientpool.Peer, req uint64) (uint64, error) {
		if refuse.Load() {
			// The pool cuts the client back to minCap, then refuses.
			p.UpdateCapacity(testMinCap, true)
			return 0, clientpool.ErrNoPriority
		}
		p.UpdateCapacity(req, true)
		return req, nil
	}
	h := newTestHandler(pool)
	m := connectPipe(t, h, enode.ID{5})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
	m.Send(CapacityRequestMsg, CapacityRequest{ReqID: 1, Capacity: 8000})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: 8000, Requested: true})
	m.Expect(CapacityReplyMsg, CapacityReply{ReqID: 1, Capacity: 8000, Code: CapOK})

	refuse.Store(true)
	m.Send(CapacityRequestMsg, CapacityRequest{ReqID: 2, Capacity: 9000})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap, Requested: true})
	m.Expect(CapacityReplyMsg, CapacityReply{ReqID: 2, Capacity: testMinCap, Code: CapNoPriority, Msg: clientpool.ErrNoPriority.Error()})
}

func TestVfluxRequestsAreServedAndCharged(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	srv := &echoServer{}
	h := newTestHandler(pool, func(c *Config) { c.Requests = srv })
	m := connectPipe(t, h, enode.ID{6})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})

	var reqs vflux.Requests
	if _, err := reqs.Add("vfx", "cq", &vflux.CapacityQueryReq{Bias: 10, AddTokens: make([]vflux.IntOrInf, 3)}); err != nil {
		t.Fatal(err)
	}
	batch, _ := rlp.EncodeToBytes(reqs)
	req := VfluxRequest{ReqID: 7, Requests: batch}
	m.Send(VfluxRequestMsg, req)
	var reply VfluxReply
	m.ExpectDecode(VfluxReplyMsg, &reply)
	var replies vflux.Replies
	if err := rlp.DecodeBytes(reply.Replies, &replies); err != nil || len(replies) != 1 || !bytes.Equal(replies[0], batch) {
		t.Fatalf("replies %x (%v), want the echoed batch", reply.Replies, err)
	}
	in, _ := rlp.EncodeToBytes(&req)
	out, _ := rlp.EncodeToBytes(&reply)
	want := RequestCost(params.RequestCostBase, params.RequestCostPerKB, len(in), len(out))
	if costs := pool.servedCosts(); len(costs) != 1 || costs[0] != want {
		t.Fatalf("charged %v, want [%d]", costs, want)
	}
	if len(srv.ips) != 1 || srv.ips[0] != nil {
		t.Fatalf("request server saw IPs %v, want one nil (a pipe has no IP)", srv.ips)
	}

	// A batch the request server does not answer gets an empty Replies.
	srv.mu.Lock()
	srv.drop = true
	srv.mu.Unlock()
	dropped := droppedMeter.Snapshot().Count()
	m.Send(VfluxRequestMsg, VfluxRequest{ReqID: 8, Requests: batch})
	m.Expect(VfluxReplyMsg, VfluxReply{ReqID: 8, Replies: []byte{0xc0}})
	if got := droppedMeter.Snapshot().Count() - dropped; got != 1 {
		t.Fatalf("dropped meter moved by %d, want 1", got)
	}
}

func TestEvictionDisconnectsWithTooManyPeersAndUnregisters(t *testing.T) {
	pool := newFakePool(testMinCap, 0) // no room, allowance 0: told to disconnect in Register
	h := newTestHandler(pool, func(c *Config) { c.InactiveAllowance = 0 })
	m := connectPipe(t, h, enode.ID{7})
	m.ExpectDisconnect(p2p.DiscTooManyPeers)
	if pool.count() != 0 || pool.unregs != 1 {
		t.Fatalf("registered %d, unregistered %d times; want 0, 1", pool.count(), pool.unregs)
	}
}

func TestStopEndsEveryPeerWithQuittingAndRefusesLaterPeers(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	h := newTestHandler(pool)
	var ms []*p2ptest.MsgTester
	for i := byte(0); i < 3; i++ {
		m := connectPipe(t, h, enode.ID{10 + i})
		m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
		ms = append(ms, m)
	}
	stopped := make(chan struct{})
	go func() { h.Stop(); h.Stop(); close(stopped) }()
	for _, m := range ms {
		m.ExpectDisconnect(p2p.DiscQuitting)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
	if pool.count() != 0 || h.PeerCount() != 0 {
		t.Fatalf("after Stop: %d registered, %d loops", pool.count(), h.PeerCount())
	}
	late := p2ptest.NewMsgTester(t, h.Protocol(), enode.ID{20})
	late.ExpectDisconnect(p2p.DiscQuitting)
	h.Stop() // still harmless
}

func TestAClientThatIsRegisteredTwiceIsRefused(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	h := newTestHandler(pool)
	m1 := connectPipe(t, h, enode.ID{8})
	m1.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
	// The second connection is refused before the handshake: the peer is
	// registered as soon as it connects.
	m2 := p2ptest.NewMsgTester(t, h.Protocol(), enode.ID{8})
	m2.ExpectDisconnect(p2p.DiscAlreadyConnected)
	if pool.count() != 1 {
		t.Fatalf("registered %d, want the first connection only", pool.count())
	}
}

// floodUntilBusy sends small vflux requests until one gets Busy and returns
// how many were served first and the Busy reply.
func floodUntilBusy(t *testing.T, m *p2ptest.MsgTester, firstID uint64) (int, Busy) {
	t.Helper()
	req := VfluxRequest{Requests: []byte{0xc0}}
	served := 0
	for id := firstID; ; id++ {
		req.ReqID = id
		m.Send(VfluxRequestMsg, req)
		var head struct {
			ReqID uint64
			Rest  []rlp.RawValue `rlp:"tail"`
		}
		code, payload := m.Read()
		if err := rlp.DecodeBytes(payload, &head); err != nil {
			t.Fatalf("answer %#x does not decode: %v", code, err)
		}
		if head.ReqID != id {
			t.Fatalf("answer for request %d, want %d", head.ReqID, id)
		}
		if code == BusyMsg {
			var busy Busy
			if err := rlp.DecodeBytes(payload, &busy); err != nil {
				t.Fatal(err)
			}
			return served, busy
		}
		served++
		if served > 10000 {
			t.Fatal("never busy without the clock moving")
		}
	}
}

func TestTheBufferIsCapacityTimesBufferSecsAndInactiveClientsAreMeteredAtMinCap(t *testing.T) {
	// A small request costs RequestCostBase (80) units plus 0-2 for its bytes
	// here; the buffer is rate*BufferSecs with rate = max(capacity, minCap).
	tests := []struct {
		name     string
		capacity uint64 // what the pool gives at Register
		active   bool
	}{
		{"an inactive client gets a minCap buffer", 0, false},
		{"a client at minCap gets a minCap buffer", testMinCap, true},
		{"a client at 5*minCap gets five times the buffer", 5 * testMinCap, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := new(mclock.Simulated)
			room := 10
			if !tt.active {
				room = 0
			}
			pool := newFakePool(testMinCap, room)
			if tt.capacity > testMinCap {
				pool.onRegister = func(p clientpool.Peer) { p.UpdateCapacity(tt.capacity, false) }
			}
			h := newTestHandler(pool, func(c *Config) { c.Clock = clock })
			m := connectPipe(t, h, enode.ID{9})
			if tt.active {
				m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: tt.capacity})
			}
			served, _ := floodUntilBusy(t, m, 1)
			rate := max(tt.capacity, testMinCap)
			most := int(rate * params.BufferSecs / params.RequestCostBase)
			least := int(rate * params.BufferSecs / (params.RequestCostBase + 2))
			if served < least || served > most {
				t.Fatalf("served %d requests before Busy, want %d to %d", served, least, most)
			}
		})
	}
}

func TestMeteringSendsBusyWithAWaitAfterWhichTheRequestIsServed(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newFakePool(testMinCap, 10)
	h := newTestHandler(pool, func(c *Config) { c.Clock = clock })
	m := connectPipe(t, h, enode.ID{9})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
	servedBefore, busyBefore := servedMeter.Snapshot().Count(), busyMeter.Snapshot().Count()
	served, busy := floodUntilBusy(t, m, 1)
	if got := servedMeter.Snapshot().Count() - servedBefore; got != int64(served) {
		t.Fatalf("served meter moved by %d, want %d", got, served)
	}
	if got := busyMeter.Snapshot().Count() - busyBefore; got != 1 {
		t.Fatalf("busy meter moved by %d, want 1", got)
	}
	// The buffer is minCap*BufferSecs = 5000 units and a small request costs
	// about 80: about 60 requests fit.
	if served < 50 || served > 70 {
		t.Fatalf("served %d requests before Busy, want about 60", served)
	}
	if busy.WaitMillis == 0 || busy.WaitMillis > 1000 {
		t.Fatalf("Busy wait %d ms, want a short positive wait", busy.WaitMillis)
	}
	// Just before the wait is over it is still busy; after it, the request is served.
	clock.Run(time.Duration(busy.WaitMillis)*time.Millisecond - 2*time.Millisecond)
	m.Send(VfluxRequestMsg, VfluxRequest{ReqID: 1000, Requests: []byte{0xc0}})
	m.ExpectDecode(BusyMsg, &busy)
	clock.Run(time.Duration(busy.WaitMillis) * time.Millisecond)
	m.Send(VfluxRequestMsg, VfluxRequest{ReqID: 1001, Requests: []byte{0xc0}})
	var reply VfluxReply
	m.ExpectDecode(VfluxReplyMsg, &reply)
	if reply.ReqID != 1001 {
		t.Fatalf("reply ID %d", reply.ReqID)
	}
	// Strikes: MaxBusyStrikes consecutive Busy replies drop the client.
	for i := 0; i < params.MaxBusyStrikes; i++ {
		m.Send(VfluxRequestMsg, VfluxRequest{ReqID: uint64(2000 + i), Requests: []byte{0xc0}})
		m.ExpectDecode(BusyMsg, &busy)
	}
	m.ExpectDisconnect(p2p.DiscUselessPeer)
	if pool.count() != 0 {
		t.Fatal("dropped flooder still registered")
	}
}

func TestBusyErrorSaysWhenToRetry(t *testing.T) {
	err := error(&BusyError{Wait: 120 * time.Millisecond})
	var be *BusyError
	if !errors.As(err, &be) || be.Wait != 120*time.Millisecond || !strings.Contains(err.Error(), "120ms") {
		t.Fatalf("BusyError %v", err)
	}
}

func TestAClientHangingUpEndsTheLoopWithANetworkErrorAndUnregisters(t *testing.T) {
	pool := newFakePool(testMinCap, 10)
	h := newTestHandler(pool)
	m := connectPipe(t, h, enode.ID{30})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
	m.Close()
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if err, _ := m.RunErr(); err != p2p.DiscNetworkError {
		t.Fatalf("Run returned %v (%T), want the bare %v", err, err, p2p.DiscNetworkError)
	}
	if pool.count() != 0 || pool.unregs != 1 {
		t.Fatalf("registered %d, unregistered %d times", pool.count(), pool.unregs)
	}
}

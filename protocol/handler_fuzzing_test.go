package protocol

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/p2ptest"
)

// FuzzServerMessage sends one arbitrary message after a valid handshake. The
// handler must answer or end with a bare p2p.DiscReason, never panic, and
// never leave a registration behind.
func FuzzServerMessage(f *testing.F) {
	enc := func(v interface{}) []byte { b, _ := rlp.EncodeToBytes(v); return b }
	f.Add(uint64(VfluxRequestMsg), enc(&VfluxRequest{ReqID: 1, Requests: []byte{0xc0}}))
	f.Add(uint64(VfluxRequestMsg), enc(&VfluxRequest{ReqID: 1, Requests: []byte{0xc3, 0x82, 0x61, 0x62}}))
	f.Add(uint64(CapacityRequestMsg), enc(&CapacityRequest{ReqID: 2, Capacity: 5000, BiasSecs: 1 << 62}))
	f.Add(uint64(CapacityRequestMsg), []byte{0xc0})
	f.Add(uint64(HandshakeMsg), enc(&Handshake{Version: Version}))
	f.Add(uint64(BusyMsg), enc(&Busy{}))
	f.Add(uint64(Length-1), []byte{0x80})
	f.Add(uint64(VfluxRequestMsg), []byte{0xf8})
	f.Fuzz(func(t *testing.T, code uint64, payload []byte) {
		code %= Length
		if len(payload) > MaxMessageSize+1 {
			payload = payload[:MaxMessageSize+1]
		}
		pool := newFakePool(testMinCap, 10)
		pool.setCap = func(p clientpool.Peer, req uint64) (uint64, error) {
			p.UpdateCapacity(req, true)
			return req, nil
		}
		h := newTestHandler(pool)
		m := p2ptest.NewMsgTester(t, h.Protocol(), enode.ID{1})
		m.Timeout = 5 * time.Second
		m.Expect(HandshakeMsg, h.Handshake())
		m.Send(HandshakeMsg, Handshake{Version: Version})
		m.SendRaw(code, payload)
		m.Close()
		select {
		case <-m.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after the pipe closed")
		}
		err, _ := m.RunErr()
		if _, ok := err.(p2p.DiscReason); !ok {
			t.Fatalf("Run returned %v (%T), want a bare p2p.DiscReason", err, err)
		}
		if pool.count() != 0 {
			t.Fatal("registration left behind")
		}
	})
}

package protocol

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// blockingService holds the request server's service until release is closed,
// so a second batch has to wait in the limiter.
type blockingService struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingService) Handle(id enode.ID, freeID, name string, data []byte) []byte {
	b.entered <- struct{}{}
	<-b.release
	return []byte{0x01}
}

// encodedBatch encodes a batch of n requests to the service "vfx".
func encodedBatch(t *testing.T, n int) []byte {
	t.Helper()
	reqs := make(vflux.Requests, n) // built by hand: Add refuses more than the batch limit
	for i := range reqs {
		reqs[i] = vflux.Request{Service: params.ServiceName, Name: "x", Params: []byte{0xc0}}
	}
	enc, err := rlp.EncodeToBytes(reqs)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestABatchTheRequestServerDropsOrRefusesIsBilledCostBaseAtMost(t *testing.T) {
	tests := []struct {
		name  string
		batch func(t *testing.T) []byte
		// setup prepares the request server; it returns a cleanup.
		setup func(t *testing.T, srv *vflux.Server) func()
	}{
		{"an empty batch", func(t *testing.T) []byte { return []byte{0xc0} }, nil},
		{"an undecodable batch", func(t *testing.T) []byte { return []byte{0x83, 'b', 'a', 'd'} }, nil},
		{"an oversize batch", func(t *testing.T) []byte { return encodedBatch(t, params.MaxRequestsPerBatch+1) }, nil},
		{"a batch sent after the server stopped", func(t *testing.T) []byte { return encodedBatch(t, 1) },
			func(t *testing.T, srv *vflux.Server) func() { srv.Stop(); return func() {} }},
		{"a batch the limiter drops at its wait bound", func(t *testing.T) []byte { return encodedBatch(t, 1) },
			func(t *testing.T, srv *vflux.Server) func() {
				// Another node's batch holds the service, so ours waits in the
				// limiter until the bound and is dropped.
				svc := &blockingService{entered: make(chan struct{}), release: make(chan struct{})}
				if err := srv.Register(svc, params.ServiceName, "blocks"); err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					srv.ServeEncoded(enode.ID{0xee}, net.IP{10, 0, 0, 1}, encodedBatch(t, 1))
				}()
				select {
				case <-svc.entered:
				case <-time.After(netTimeout):
					t.Fatal("the blocking batch never reached the service")
				}
				return func() { close(svc.release); <-done }
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := vflux.NewServer(vflux.ServerConfig{MaxWait: 20 * time.Millisecond})
			defer srv.Stop()
			if tt.setup != nil {
				defer tt.setup(t, srv)()
			}
			pool := newFakePool(testMinCap, 10)
			h := newTestHandler(pool, func(c *Config) { c.Requests = srv })
			m := connectPipe(t, h, enode.ID{8})
			m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})
			stats := srv.Stats()

			m.Send(VfluxRequestMsg, VfluxRequest{ReqID: 3, Requests: tt.batch(t)})
			m.Expect(VfluxReplyMsg, VfluxReply{ReqID: 3, Replies: emptyReplies})
			after := srv.Stats()
			if after.Served != stats.Served || after.Dropped+after.Refused != stats.Dropped+stats.Refused+1 {
				t.Fatalf("server stats went from %+v to %+v: want the batch dropped or refused, not served", stats, after)
			}
			costs := pool.servedCosts()
			if len(costs) != 1 || costs[0] > params.RequestCostBase {
				t.Fatalf("billed %v for a batch that was not served, want one charge of at most CostBase (%d)", costs, params.RequestCostBase)
			}
		})
	}
}

func TestAServedBatchIsStillBilledItsFullCost(t *testing.T) {
	srv := vflux.NewServer(vflux.ServerConfig{})
	defer srv.Stop()
	pool := newFakePool(testMinCap, 10)
	h := newTestHandler(pool, func(c *Config) { c.Requests = srv })
	m := connectPipe(t, h, enode.ID{9})
	m.Expect(CapacityUpdateMsg, CapacityUpdate{Capacity: testMinCap})

	req := VfluxRequest{ReqID: 4, Requests: encodedBatch(t, 2)} // unknown names: served, empty answers
	m.Send(VfluxRequestMsg, req)
	var reply VfluxReply
	m.ExpectDecode(VfluxReplyMsg, &reply)
	if bytes.Equal(reply.Replies, emptyReplies) {
		t.Fatal("a served batch got the empty answer of a dropped one")
	}
	in, _ := rlp.EncodeToBytes(&req)
	out, _ := rlp.EncodeToBytes(&reply)
	want := RequestCost(params.RequestCostBase, params.RequestCostPerKB, len(in), len(out))
	if costs := pool.servedCosts(); len(costs) != 1 || costs[0] != want {
		t.Fatalf("billed %v, want [%d]", costs, want)
	}
}

package protocol

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
)

// BenchmarkHandshakeAndRegisterOverMsgPipe measures one client's whole
// connection on the server side over a message pipe: the Handshake both ways,
// Register with the real pool (it gets minCap), the CapacityUpdate, then the
// hang-up and Unregister.
func BenchmarkHandshakeAndRegisterOverMsgPipe(b *testing.B) {
	pool := clientpool.NewClientPool(memorydb.New(), testMinCap, time.Minute, new(mclock.Simulated), func() bool { return true })
	pool.Start()
	defer pool.Stop()
	pool.SetLimits(1000, 1000*testMinCap)
	h := NewHandler(Config{Pool: pool, MinCap: testMinCap, InactiveAllowance: time.Minute})
	defer h.Stop()
	run := h.Protocol().Run
	caps := []p2p.Cap{{Name: Name, Version: Version}}
	hello, _ := rlp.EncodeToBytes(&Handshake{Version: Version})

	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		var id enode.ID
		binary.BigEndian.PutUint64(id[:], i)
		local, remote := p2p.MsgPipe()
		done := make(chan error, 1)
		go func() { done <- run(p2p.NewPeerPipe(id, "bench", caps, local), local) }()
		msg, err := remote.ReadMsg() // server Handshake
		if err != nil || msg.Code != HandshakeMsg {
			b.Fatalf("handshake: %v %v", msg.Code, err)
		}
		msg.Discard()
		if err := sendRaw(remote, HandshakeMsg, hello); err != nil {
			b.Fatal(err)
		}
		msg, err = remote.ReadMsg() // CapacityUpdate
		if err != nil || msg.Code != CapacityUpdateMsg {
			b.Fatalf("update: %v %v", msg.Code, err)
		}
		io.Copy(io.Discard, msg.Payload)
		remote.Close()
		<-done
	}
	if count, _ := pool.Active(); count != 0 {
		b.Fatalf("%d clients left registered", count)
	}
}

// BenchmarkVfluxRoundTripOverRLPx measures one "cq" request and its reply
// between a client and a server connected over real RLPx on 127.0.0.1, served
// by the real vflux.Server and pool. Metering is set wide open (the handler's
// metering minCap is huge) so the figure is the transport and serving cost.
func BenchmarkVfluxRoundTripOverRLPx(b *testing.B) {
	pool := clientpool.NewClientPool(memorydb.New(), testMinCap, time.Minute, mclock.System{}, func() bool { return true })
	pool.Start()
	pool.SetLimits(10, 10*testMinCap)
	pool.SetDefaultFactors(defaultFactors, defaultFactors)
	n := startRealNodeWith(b, pool, Config{MinCap: 1e12})
	cl := startVfxClient(b).dial(b, n.vfxServer)
	reqs := cqBatch(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		replies, err := cl.Vflux(ctx, reqs)
		if err != nil || len(replies) != 1 {
			b.Fatalf("replies %v, %v", replies, err)
		}
	}
}

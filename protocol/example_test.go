package protocol_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/protocol"
	"github.com/vflux-net/vflux/vflux"
)

func startP2P(protos ...p2p.Protocol) *p2p.Server {
	key, _ := crypto.GenerateKey()
	srv := &p2p.Server{Config: p2p.Config{
		PrivateKey: key, MaxPeers: 10, NoDiscovery: true,
		ListenAddr: "127.0.0.1:0", Protocols: protos,
	}}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	return srv
}

// A serving node and a client on loopback: the client connects, gets minCap,
// asks what capacity tokens would buy, and asks for more capacity (refused: it
// has no positive balance).
func Example() {
	// The server: pool, request server, handler, p2p server. Deferred calls
	// run in the node's stop order: request server, peer loops, pool.
	pool := clientpool.NewClientPool(memorydb.New(), 1000, time.Minute, mclock.System{}, func() bool { return true })
	pool.Start()
	defer pool.Stop()
	pool.SetLimits(10, 10000)
	requests := vflux.NewServer(vflux.ServerConfig{})
	if err := requests.Register(pool, "vfx", "client pool"); err != nil {
		panic(err)
	}
	handler := protocol.NewHandler(protocol.Config{Pool: pool, Requests: requests, MinCap: 1000, InactiveAllowance: 10 * time.Second})
	defer handler.Stop()
	defer requests.Stop()
	server := startP2P(handler.Protocol())
	defer server.Stop()

	// The client.
	peers := protocol.NewClientPeers()
	clientSrv := startP2P(peers.Protocol())
	defer clientSrv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := peers.Dial(ctx, clientSrv, server.Self())
	if err != nil {
		panic(err)
	}
	defer client.Close()
	update := <-client.Updates()
	fmt.Println("capacity:", update.Capacity)

	var reqs vflux.Requests
	amounts := make([]vflux.IntOrInf, 1)
	reqs.Add("vfx", vflux.CapacityQueryName, &vflux.CapacityQueryReq{Bias: 60, AddTokens: amounts})
	replies, err := client.Vflux(ctx, reqs)
	if err != nil {
		panic(err)
	}
	var answer vflux.CapacityQueryReply
	replies.Get(0, &answer)
	fmt.Println("capacity for 0 more tokens:", answer)

	reply, err := client.RequestCapacity(ctx, 5000, time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Println("request 5000: code", reply.Code, "capacity", reply.Capacity)
	// Output:
	// capacity: 1000
	// capacity for 0 more tokens: [1000]
	// request 5000: code 1 capacity 1000
}

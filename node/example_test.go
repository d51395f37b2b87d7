package node_test

import (
	"fmt"

	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	vfnode "github.com/vflux-net/vflux/node"
)

// A go-ethereum node becomes a vflux server with one call before Start. With
// no data directory the balances live in memory.
func ExampleNew() {
	cfg := vfnode.DefaultConfig()
	cfg.Serve = true
	cfg.MaxClients = 10

	gc := &gethnode.Config{
		Name: "vflux",
		P2P:  p2p.Config{ListenAddr: "127.0.0.1:0", DiscoveryV5: true},
	}
	vfnode.ConfigureP2P(&gc.P2P, cfg, false) // NoDial, MaxPeers = 10 active + 10 waiting
	stack, err := gethnode.New(gc)
	if err != nil {
		panic(err)
	}
	defer stack.Close()

	svc, err := vfnode.New(stack, cfg)
	if err != nil {
		panic(err)
	}
	if err := stack.Start(); err != nil {
		panic(err)
	}
	maxCount, maxCap := svc.Pool().Limits()
	fmt.Println("active slots:", maxCount, "total capacity:", maxCap, "peer slots:", stack.Server().MaxPeers)
	// Output: active slots: 10 total capacity: 100000 peer slots: 20
}

package client_test

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/vflux-net/vflux/client"
	vfnode "github.com/vflux-net/vflux/node"
	"github.com/vflux-net/vflux/vflux"
)

// exampleServer starts an in-process vflux server on loopback with the
// default configuration (mincap 1000) and maxClients slots.
func exampleServer(maxClients uint64) (*gethnode.Node, error) {
	cfg := vfnode.DefaultConfig()
	cfg.Serve, cfg.MaxClients = true, maxClients
	gc := &gethnode.Config{P2P: p2p.Config{ListenAddr: "127.0.0.1:0", DiscoveryV5: true}}
	vfnode.ConfigureP2P(&gc.P2P, cfg, false)
	stack, err := gethnode.New(gc)
	if err != nil {
		return nil, err
	}
	if _, err := vfnode.New(stack, cfg); err != nil {
		stack.Close()
		return nil, err
	}
	if err := stack.Start(); err != nil {
		stack.Close()
		return nil, err
	}
	return stack, nil
}

// Survey known servers and pick the best for a free client.
func ExampleClient_Survey() {
	small, err := exampleServer(2)
	if err != nil {
		panic(err)
	}
	defer small.Close()
	large, err := exampleServer(4)
	if err != nil {
		panic(err)
	}
	defer large.Close()

	key, _ := crypto.GenerateKey()
	c, err := client.New(client.Config{
		PrivateKey: key,
		ListenIP:   net.IPv4(127, 0, 0, 1),
		Servers:    []*enode.Node{small.Server().Self(), large.Server().Self()},
		Amounts:    []*big.Int{big.NewInt(1e12)},
		Policy:     client.ByCapacityFor(big.NewInt(1e12)),
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offers, err := c.Survey(ctx, 0, nil)
	if err != nil {
		panic(err)
	}
	for _, o := range offers {
		free, _ := o.CapacityFor(big.NewInt(0))
		paid, _ := o.CapacityFor(big.NewInt(1e12))
		fmt.Printf("large=%v free=%d with 1e12 tokens=%d\n", o.Node.ID() == large.Server().Self().ID(), free, paid)
	}
	// Output:
	// large=true free=1000 with 1e12 tokens=40000
	// large=false free=1000 with 1e12 tokens=20000
}

// Hold capacity on the best server; Events reports what happens to it.
func ExampleClient_Hold() {
	server, err := exampleServer(2)
	if err != nil {
		panic(err)
	}
	defer server.Close()

	key, _ := crypto.GenerateKey()
	c, err := client.New(client.Config{
		PrivateKey: key,
		ListenIP:   net.IPv4(127, 0, 0, 1),
		Servers:    []*enode.Node{server.Server().Self()},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := c.Hold(ctx, 0)
	defer s.Close()
	for ev := range s.Events() {
		if ev.Kind == client.Connected || ev.Kind == client.CapacityChanged {
			if ev.Capacity > 0 {
				fmt.Println("holding capacity", ev.Capacity)
				return
			}
		}
	}
	// Output:
	// holding capacity 1000
}

// Rank offers by the most capacity for a budget of 1e10 tokens; ties go to
// the cheaper server.
func ExampleRank() {
	offer := func(id byte, capacity, price uint64) *client.Offer {
		n := enode.SignNull(new(enr.Record), enode.ID{id})
		return &client.Offer{
			Node:       n,
			Amounts:    []*big.Int{big.NewInt(1e10)},
			Capacities: []uint64{capacity},
			Info:       &vflux.ServerInfoReply{MinCap: 1000, MaxCap: 100000, PosFactors: [3]uint64{0, price, 1000}},
		}
	}
	offers := []*client.Offer{offer(1, 20000, 1e12), offer(2, 40000, 1e12), offer(3, 40000, 1e11)}
	client.Rank(offers, client.ByCapacityFor(big.NewInt(1e10)))
	for _, o := range offers {
		fmt.Printf("server %x: capacity %d\n", o.Node.ID().Bytes()[:1], o.Capacities[0])
	}
	// Output:
	// server 03: capacity 40000
	// server 02: capacity 40000
	// server 01: capacity 20000
}

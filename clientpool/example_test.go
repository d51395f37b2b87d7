package clientpool_test

import (
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/vflux"
)

// examplePeer is a client as a transport would wrap it: it prints what the
// pool tells it.
type examplePeer struct {
	name string
	node *enode.Node
	pool *clientpool.ClientPool
}

func newExamplePeer(name string, i byte, pool *clientpool.ClientPool) *examplePeer {
	var id enode.ID
	id[31] = i
	return &examplePeer{name: name, node: enode.SignNull(new(enr.Record), id), pool: pool}
}

func (p *examplePeer) Node() *enode.Node                { return p.node }
func (p *examplePeer) FreeClientID() string             { return p.name }
func (p *examplePeer) InactiveAllowance() time.Duration { return 0 }
func (p *examplePeer) UpdateCapacity(c uint64, requested bool) {
	fmt.Printf("  %s: capacity %d\n", p.name, c)
}
func (p *examplePeer) Disconnect() {
	fmt.Printf("  %s: disconnected\n", p.name)
	p.pool.Unregister(p) // a transport drops the peer, which unregisters it
}

// perSecond is 1 token per second of connection, in internal units (per ns).
var perSecond = clientpool.PriceFactors{TimeFactor: 1e-9}

// A pool with room for two clients: free clients take turns after the
// connected bias, and a client with a positive balance out-ranks them.
func Example() {
	clock := &mclock.Simulated{}
	pool := clientpool.NewClientPool(memorydb.New(), 100, time.Minute, clock, nil)
	pool.SetLimits(2, 200)
	pool.SetDefaultFactors(perSecond, perSecond)
	pool.Start()
	defer pool.Stop()

	fmt.Println("alice and bob connect:")
	pool.Register(newExamplePeer("alice", 1, pool))
	pool.Register(newExamplePeer("bob", 2, pool))

	fmt.Println("carol connects to a full pool:")
	pool.Register(newExamplePeer("carol", 3, pool))

	clock.Run(2 * time.Minute)
	fmt.Println("two minutes later dave connects:")
	pool.Register(newExamplePeer("dave", 4, pool))

	fmt.Println("erin brings 1000 tokens:")
	erin := newExamplePeer("erin", 5, pool)
	pool.BalanceOperation(erin.node.ID(), erin.name, func(op clientpool.AtomicBalanceOperator) {
		op.AddBalance(1000)
	})
	pool.Register(erin)
	count, capacity := pool.Active()
	fmt.Printf("active: %d clients, capacity %d\n", count, capacity)

	// Output:
	// alice and bob connect:
	//   alice: capacity 100
	//   bob: capacity 100
	// carol connects to a full pool:
	//   carol: disconnected
	// two minutes later dave connects:
	//   alice: capacity 0
	//   alice: disconnected
	//   dave: capacity 100
	// erin brings 1000 tokens:
	//   bob: capacity 0
	//   bob: disconnected
	//   erin: capacity 100
	// active: 2 clients, capacity 200
}

// A paid client asks for more capacity; the pool grants what it can hold.
func ExampleClientPool_SetCapacity() {
	clock := &mclock.Simulated{}
	pool := clientpool.NewClientPool(memorydb.New(), 100, time.Minute, clock, nil)
	pool.SetLimits(10, 1000)
	pool.Start()
	defer pool.Stop()

	p := newExamplePeer("paid", 1, pool)
	pool.BalanceOperation(p.node.ID(), p.name, func(op clientpool.AtomicBalanceOperator) {
		op.AddBalance(1e9)
	})
	pool.Register(p)
	granted, err := pool.SetCapacity(p.node, 5000, 0, true) // more than maxCap: a partial grant
	fmt.Println("granted:", granted, err)
	// Output:
	//   paid: capacity 100
	//   paid: capacity 1000
	// granted: 1000 <nil>
}

// A client asks, before connecting, what capacity it would get for how many
// tokens: the vflux "cq" request the pool answers as a vflux.Service.
func ExampleClientPool_Handle() {
	clock := &mclock.Simulated{}
	pool := clientpool.NewClientPool(memorydb.New(), 100, time.Minute, clock, nil)
	pool.SetLimits(10, 1000)
	// capacity costs 1 token per second per unit
	pool.SetDefaultFactors(clientpool.PriceFactors{CapacityFactor: 1e-3}, clientpool.PriceFactors{})
	pool.Start()
	defer pool.Stop()
	for i := byte(1); i <= 10; i++ { // a full pool of free clients
		pool.Register(&quietPeer{newExamplePeer("free", i, pool)})
	}

	req := vflux.CapacityQueryReq{Bias: 60, AddTokens: make([]vflux.IntOrInf, 3)}
	for i, tokens := range []int64{0, 30000, 60000} {
		req.AddTokens[i].SetInt64(tokens)
	}
	enc, _ := rlp.EncodeToBytes(&req)
	var reply vflux.CapacityQueryReply
	rlp.DecodeBytes(pool.Handle(enode.ID{0xaa}, "10.0.0.1", vflux.CapacityQueryName, enc), &reply)
	for i, tokens := range []int64{0, 30000, 60000} {
		fmt.Printf("%6d tokens -> capacity %d\n", tokens, reply[i])
	}
	// Output:
	//      0 tokens -> capacity 0
	//  30000 tokens -> capacity 499
	//  60000 tokens -> capacity 999
}

// quietPeer is an examplePeer that prints nothing.
type quietPeer struct{ *examplePeer }

func (quietPeer) UpdateCapacity(uint64, bool) {}
func (quietPeer) Disconnect()                 {}

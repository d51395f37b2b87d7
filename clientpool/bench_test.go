package clientpool_test

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// Benchmarks of the pool's hot paths at growing sizes (SPEC 3.4: O(log n)).
// Results and the command that produced them are in BENCHMARKS.md:
//
//	go test ./clientpool/ -run '^$' -bench . -benchtime 2000x
//
// Each size builds its pool once, outside the timer, and reuses it for every
// b.N round of the same sub-benchmark.

var benchSizes = []int{100, 1000, 10000, 100000}

// benchPeer is a minimal Peer for benchmarks: it keeps no history, so the
// measured allocations are the pool's own.
type benchPeer struct {
	node     *enode.Node
	freeID   string
	capacity uint64
	fx       *churnFixture
	index    int
}

func (p *benchPeer) Node() *enode.Node                { return p.node }
func (p *benchPeer) FreeClientID() string             { return p.freeID }
func (p *benchPeer) InactiveAllowance() time.Duration { return 24 * time.Hour }

// UpdateCapacity counts activations: a capacity given to a client that had
// none.
func (p *benchPeer) UpdateCapacity(c uint64, _ bool) {
	if p.capacity == 0 && c > 0 {
		p.fx.activations++
	}
	p.capacity = c
}

func (p *benchPeer) Disconnect() { p.fx.evicted = append(p.fx.evicted, p.index) }

// churnFixture is a pool full at n active clients with 3n clients in all, of
// which 2n are registered (n active, n waiting). Every step either unregisters a
// random registered client or registers a random unregistered one, alternately,
// so the pool stays full, and the simulated clock advances by dt so that
// negative balances grow, priorities change and timers fire.
//
// BenchmarkChurn's dt is one second divided by n: every client churns about
// as often at every size (once per 3 simulated seconds), as on a real server
// where more clients also mean more connections per second. The one-second
// benchmarks step by one second at every size instead: the work time causes
// per second of pool time (BENCHMARKS.md has both).
type churnFixture struct {
	pool        *clientpool.ClientPool
	clock       *mclock.Simulated
	dt          time.Duration
	peers       []*benchPeer
	registered  []int // indexes of registered peers
	waiting     []int // indexes of unregistered peers
	pos         []int // position of each peer in registered or waiting
	evicted     []int
	activations int // clients given a capacity (benchPeer.UpdateCapacity)
	rng         *rand.Rand
	steps       int
}

func newChurnFixture(n int, dt time.Duration) *churnFixture {
	return newChurnFixtureWith(n, 2*n, dt, 0, 0)
}

// newChurnFixtureWith is newChurnFixture with registered clients registered
// (at least n), every paidEvery-th client (none if 0) given a positive
// balance of 1e11 to 1e13 tokens (100 s to 10,000 s of connection at the
// benchmarks' 1 token per ns) before it first registers, and the connected
// bias set before the first registers.
func newChurnFixtureWith(n, registered int, dt time.Duration, paidEvery int, bias time.Duration) *churnFixture {
	fx := &churnFixture{clock: new(mclock.Simulated), dt: dt, rng: rand.New(rand.NewSource(1))}
	fx.pool = clientpool.NewClientPool(memorydb.New(), 1, 0, fx.clock, alwaysSynced)
	fx.pool.Start()
	fx.pool.SetLimits(uint64(n), uint64(n))
	fx.pool.SetDefaultFactors(timeFactors, timeFactors)
	fx.pool.SetConnectedBias(bias)
	fx.pool.SetExpirationTCs(0, 3600)
	fx.peers = make([]*benchPeer, 3*n)
	fx.pos = make([]int, 3*n)
	for i := range fx.peers {
		fx.peers[i] = &benchPeer{node: testNode(testID(i)), freeID: fmt.Sprintf("f%d", i), fx: fx, index: i}
		if paidEvery > 0 && i%paidEvery == 0 {
			amount := (1 + fx.rng.Int63n(100)) * 1e11
			if _, _, err := fx.pool.AddBalance(testID(i), fx.peers[i].freeID, amount); err != nil {
				panic(err)
			}
		}
		fx.pos[i] = len(fx.waiting)
		fx.waiting = append(fx.waiting, i)
	}
	for len(fx.registered) < registered {
		fx.register()
		fx.clock.Run(fx.dt)
		fx.settle()
	}
	if count, _ := fx.pool.Active(); count != uint64(n) {
		panic(fmt.Sprintf("churn fixture: %d active clients, want %d", count, n))
	}
	return fx
}

// move takes peer i out of one index set and appends it to the other.
func (fx *churnFixture) move(i int, from, to *[]int) {
	k := fx.pos[i]
	last := (*from)[len(*from)-1]
	(*from)[k], fx.pos[last] = last, k
	*from = (*from)[:len(*from)-1]
	fx.pos[i] = len(*to)
	*to = append(*to, i)
}

func (fx *churnFixture) register() {
	i := fx.waiting[fx.rng.Intn(len(fx.waiting))]
	fx.move(i, &fx.waiting, &fx.registered)
	fx.pool.Register(fx.peers[i])
}

func (fx *churnFixture) unregister() {
	i := fx.registered[fx.rng.Intn(len(fx.registered))]
	fx.move(i, &fx.registered, &fx.waiting)
	fx.pool.Unregister(fx.peers[i])
	fx.peers[i].capacity = 0
}

// settle unregisters the clients the pool told to disconnect.
func (fx *churnFixture) settle() {
	for len(fx.evicted) > 0 {
		i := fx.evicted[len(fx.evicted)-1]
		fx.evicted = fx.evicted[:len(fx.evicted)-1]
		if fx.pos[i] < len(fx.registered) && fx.registered[fx.pos[i]] == i {
			fx.move(i, &fx.registered, &fx.waiting)
			fx.pool.Unregister(fx.peers[i])
			fx.peers[i].capacity = 0
		}
	}
}

// step is one churn step: a register or an unregister, then the clock moves.
func (fx *churnFixture) step() {
	if fx.steps%2 == 0 {
		fx.unregister()
	} else {
		fx.register()
	}
	fx.steps++
	fx.clock.Run(fx.dt)
	fx.settle()
}

// churnStep is the simulated time per churn step at size n (see churnFixture).
func churnStep(n int) time.Duration { return time.Second / time.Duration(n) }

// BenchmarkChurn measures one churn step, each client churning about every 3
// simulated seconds at every size, at the node's default connected bias: over
// the benchmark's few simulated seconds no waiting client comes to out-rank
// an active one, so it measures a register or an unregister and what it sets
// off. (With no bias, free clients whose debts grow alike at 1 token/ns take
// turns as fast as their debts cross, many per step: that is a different
// measurement, of the turns.)
func BenchmarkChurn(b *testing.B) {
	benchmarkChurn(b, func(n int) *churnFixture {
		return newChurnFixtureWith(n, 2*n, churnStep(n), 0, params.DefaultConnectedBias)
	})
}

// BenchmarkChurnFixedStep measures one churn step with the clock advancing 1 ms
// per step at every size, at the default connected bias: at 100,000 active
// clients that is 1,000 steps per simulated second.
func BenchmarkChurnFixedStep(b *testing.B) {
	benchmarkChurn(b, func(n int) *churnFixture {
		return newChurnFixtureWith(n, 2*n, time.Millisecond, 0, params.DefaultConnectedBias)
	})
}

// BenchmarkChurnOneSecondSteps measures one churn step with exactly one second
// of pool time per step, 10% of the clients paid and the rest free, with the
// node's default connected bias: the work time itself causes per second of
// pool time, plus one register or unregister. The fixture is built with the
// steps of BenchmarkChurn (so building 100,000 clients takes seconds, not the
// 200,000 simulated seconds of one-second steps), then runs two connected
// biases of one-second steps untimed, so that the waiting free clients take
// turns with the active ones as they do on a long-running node.
//
// The turns are the product's rule, not overhead: 2n free clients share n
// slots, each holding one for a few connected biases at a time, so a number
// of activations per second proportional to n happens at any design. The
// benchmark reports them as activations/step.
func BenchmarkChurnOneSecondSteps(b *testing.B) {
	benchmarkChurn(b, func(n int) *churnFixture { return newOneSecondFixture(n, 2*n) })
}

// BenchmarkChurnOneSecondStepsNoneWaiting is BenchmarkChurnOneSecondSteps
// with n clients registered, so nobody waits and nobody takes turns: what is
// left per second of pool time is the churn step, the paid balances running
// out, and SPEC 2.5's write of each active client's spending once a minute
// (n/60 writes per step).
func BenchmarkChurnOneSecondStepsNoneWaiting(b *testing.B) {
	benchmarkChurn(b, func(n int) *churnFixture { return newOneSecondFixture(n, n) })
}

// newOneSecondFixture builds the fixture of the one-second benchmarks.
func newOneSecondFixture(n, registered int) *churnFixture {
	fx := newChurnFixtureWith(n, registered, churnStep(n), 10, params.DefaultConnectedBias)
	fx.dt = time.Second
	for i := 0; i < int(2*params.DefaultConnectedBias/time.Second); i++ {
		fx.step()
	}
	return fx
}

// benchmarkChurn measures fx.step at every size, each fixture built once by
// newFixture.
func benchmarkChurn(b *testing.B, newFixture func(n int) *churnFixture) {
	for _, n := range benchSizes {
		var fx *churnFixture
		b.Run(fmt.Sprintf("active=%d", n), func(b *testing.B) {
			if fx == nil {
				fx = newFixture(n)
			}
			b.ReportAllocs()
			activations := fx.activations
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fx.step()
			}
			b.ReportMetric(float64(fx.activations-activations)/float64(b.N), "activations/step")
		})
		if fx != nil {
			fx.pool.Stop()
		}
	}
}

// benchQueryAmounts are the 16 token amounts of the benchmarked capacity query.
var benchQueryAmounts = []int64{0, 1e6, 1e7, 1e8, 1e9, 3e9, 1e10, 3e10, 1e11, 3e11, 1e12, 3e12, 1e13, 1e14, 1e15, 1e16}

func BenchmarkCapacityQuery(b *testing.B) {
	query := encodeCapQuery(180, benchQueryAmounts...)
	asker := testID(1 << 30) // not connected
	for _, n := range benchSizes {
		var fx *churnFixture
		b.Run(fmt.Sprintf("active=%d", n), func(b *testing.B) {
			if fx == nil {
				fx = newChurnFixture(n, churnStep(n))
				// The first query builds the capacity curve; the benchmark
				// measures answering from the warm curve.
				if reply := fx.pool.Handle(asker, "10.9.9.9", vflux.CapacityQueryName, query); reply == nil {
					b.Fatal("no reply to the capacity query")
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fx.pool.Handle(asker, "10.9.9.9", vflux.CapacityQueryName, query)
			}
		})
		if fx != nil {
			fx.pool.Stop()
		}
	}
}

package clientpool

import (
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// Clients with one free-client ID (one address) share a negative balance.
// Keeping it costs O(1) per operation whatever the number of clients sharing
// it, their keys stay lower bounds of their priorities, and a pool may bound
// how many clients one address holds (see doc.go, Shared negative balances).

// sharedAddress registers k clients with the free-client ID "10.0.0.1" in a
// pool with room for them all and returns them.
func sharedAddress(t *testing.T, pool *ClientPool, k int) ([]*peer, []*client) {
	t.Helper()
	peers := make([]*peer, k)
	clients := make([]*client, k)
	for i := range peers {
		peers[i] = newPeer(i, time.Hour)
		peers[i].freeID = "10.0.0.1"
		b := pool.Register(peers[i])
		if b == nil || peers[i].capacity() == 0 {
			t.Fatalf("client %d sharing the address is not active", i)
		}
		clients[i] = b.(*client)
	}
	return peers, clients
}

// siblingKeyChanges serves n requests of cost from clients[0], moving the
// clock by step before each, and counts how often the keys of the other
// clients changed: the active key, or the inactive order of a waiting one.
func siblingKeyChanges(pool *ClientPool, clock *mclock.Simulated, clients []*client, n int, cost uint64, step time.Duration) int {
	type key struct {
		active   float64
		inactive float64
	}
	keys := func() []key {
		pool.mu.Lock()
		defer pool.mu.Unlock()
		k := make([]key, len(clients))
		for i, c := range clients {
			k[i] = key{c.key, c.ikLog}
		}
		return k
	}
	changes := 0
	last := keys()
	for i := 0; i < n; i++ {
		if step > 0 {
			clock.Run(step)
		}
		clients[0].RequestServed(cost)
		now := keys()
		for j := 1; j < len(clients); j++ {
			if now[j] != last[j] {
				changes++
			}
		}
		last = now
	}
	return changes
}

func TestARequestLeavesTheKeysOfTheClientsSharingItsAddressAlone(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newTestPool(t, nil, clock, 100, 100)
	_, clients := sharedAddress(t, pool, 20)
	// The group's time cost over the priority horizon (20 tokens/ns for 10 s)
	// is the ceiling's headroom: 200 requests of 1 token stay far below it.
	if changes := siblingKeyChanges(pool, clock, clients, 200, 1, 0); changes != 0 {
		t.Fatalf("200 requests of one client changed the keys of the 19 sharing its address %d times, want 0", changes)
	}
}

func TestARequestLeavesTheOrderOfTheWaitingClientsSharingItsAddressAlone(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newTestPool(t, nil, clock, 5, 5)
	var clients []*client
	for i := 0; i < 15; i++ {
		p := newPeer(i, time.Hour)
		p.freeID = "10.0.0.1"
		clients = append(clients, pool.Register(p).(*client))
	}
	if count, _ := pool.Active(); count != 5 || pool.Inactive() != 10 {
		t.Fatalf("setup: %d active, %d waiting; want 5 and 10", count, pool.Inactive())
	}
	var requester *client
	for i, c := range clients {
		if c.active {
			clients[0], clients[i], requester = c, clients[0], c
			break
		}
	}
	if changes := siblingKeyChanges(pool, clock, clients, 200, 1, 0); changes != 0 || !requester.active {
		t.Fatalf("200 requests of one active client changed the keys of the 14 sharing its address (10 waiting) %d times, want 0", changes)
	}
}

func TestClientsSharingAnAddressAreReKeyedPerGrowthOfTheBalanceNotPerRequest(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newTestPool(t, nil, clock, 100, 100)
	onlyRequests := PriceFactors{RequestFactor: 1} // no time cost: only the ceiling's relative headroom
	pool.SetDefaultFactors(onlyRequests, onlyRequests)
	_, clients := sharedAddress(t, pool, 20)
	const n = 5000
	changes := siblingKeyChanges(pool, clock, clients, n, 10, time.Millisecond)
	// Eager re-keying changes 19 keys per request (95,000); the ceiling
	// re-keys them about 150 times while the balance grows 5,000-fold.
	if changes > n/10 {
		t.Fatalf("%d requests of one client changed the keys of the 19 sharing its address %d times, want at most %d", n, changes, n/10)
	}
}

func TestActiveKeysStayLowerBoundsOfPrioritiesWhenClientsShareAnAddress(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newTestPool(t, nil, clock, 100, 100)
	onlyRequests := PriceFactors{RequestFactor: 1}
	pool.SetDefaultFactors(onlyRequests, onlyRequests)
	_, shared := sharedAddress(t, pool, 5)
	var all []*client
	all = append(all, shared...)
	for i := 5; i < 8; i++ { // clients of their own addresses
		all = append(all, pool.Register(newPeer(i, time.Hour)).(*client))
	}
	rng := rand.New(rand.NewSource(1))
	for step := 0; step < 3000; step++ {
		all[rng.Intn(len(all))].RequestServed(uint64(1 + rng.Intn(200)))
		pool.mu.Lock()
		now := clock.Now()
		for i, c := range all {
			if !c.active {
				continue
			}
			b := c.snapAt(now)
			if prio, key := b.priority(c.capacity), pool.effKey(c, c.key, now); key > prio {
				pool.mu.Unlock()
				t.Fatalf("step %d: client %d is ordered by key %d above its priority %d", step, i, key, prio)
			}
		}
		pool.mu.Unlock()
	}
}

func TestTheLowestPriorityIsCutFirstWhenItsClientsShareAnAddress(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newTestPool(t, nil, clock, 4, 4)
	onlyRequests := PriceFactors{RequestFactor: 1}
	pool.SetDefaultFactors(onlyRequests, onlyRequests)
	shared, clients := sharedAddress(t, pool, 3)
	other := newPeer(3, time.Hour)
	ob := pool.Register(other)
	if other.capacity() == 0 {
		t.Fatal("the client of its own address is not active")
	}
	ob.RequestServed(100) // its negative balance: 100
	for i := 0; i < 20; i++ {
		clients[i%3].RequestServed(10) // the shared one: 200
	}
	pool.SetLimits(3, 3)
	if other.capacity() == 0 {
		t.Fatal("the client with negative balance 100 was cut while clients with 200 stayed")
	}
	cut := 0
	for _, p := range shared {
		if p.capacity() == 0 {
			cut++
		}
	}
	if cut != 1 {
		t.Fatalf("%d of the clients sharing the address were cut, want 1", cut)
	}
}

func TestAnAddressHoldsAtMostMaxPerFreeIDClients(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newTestPool(t, nil, clock, 100, 100)
	// A bare pool has no bound.
	many, _ := sharedAddress(t, pool, 10)
	for _, p := range many {
		pool.Unregister(p)
	}
	pool.SetMaxPerFreeID(3)
	in, _ := sharedAddress(t, pool, 3)
	extra := newPeer(3, time.Hour)
	extra.freeID = "10.0.0.1"
	if b := pool.Register(extra); b != nil {
		t.Fatal("a fourth client of the address was registered with the bound at 3")
	}
	if !extra.wasDisconnected() {
		t.Fatal("the refused client was not told to disconnect")
	}
	if count, _ := pool.Active(); count != 3 || pool.Inactive() != 0 {
		t.Fatalf("pool holds (%d active, %d waiting), want the 3 admitted only", count, pool.Inactive())
	}
	elsewhere := newPeer(4, time.Hour)
	elsewhere.freeID = "10.0.0.2"
	if pool.Register(elsewhere) == nil {
		t.Fatal("a client of another address was refused")
	}
	pool.Unregister(in[0]) // frees a slot of the address
	again := newPeer(5, time.Hour)
	again.freeID = "10.0.0.1"
	if pool.Register(again) == nil {
		t.Fatal("a client of the address was refused after one of its 3 left")
	}
	pool.SetMaxPerFreeID(0)
	for i := 6; i < 10; i++ {
		p := newPeer(i, time.Hour)
		p.freeID = "10.0.0.1"
		if pool.Register(p) == nil {
			t.Fatalf("client %d refused with the bound lifted", i)
		}
	}
}

func TestASaturatedSharedBalanceIsNotReKeyedPerRequest(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newTestPool(t, nil, clock, 100, 100)
	_, clients := sharedAddress(t, pool, 10)
	pool.BalanceOperation(clients[0].id, "10.0.0.1", func(op AtomicBalanceOperator) {
		if err := op.SetBalance(0, math.MaxInt64); err != nil {
			t.Error(err)
		}
	})
	clock.Run(2 * time.Minute) // settled by timers and the periodic persistence
	// At MaxInt64 the balance cannot grow past any ceiling: a request re-keys
	// its own client only, and no timer fires.
	pool.mu.Lock()
	before := pool.rekeys
	pool.mu.Unlock()
	for i := 0; i < 100; i++ {
		clock.Run(time.Millisecond)
		clients[0].RequestServed(10)
	}
	pool.mu.Lock()
	rekeys := pool.rekeys - before
	pool.mu.Unlock()
	if rekeys > 110 {
		t.Fatalf("100 requests at a saturated shared balance made %d re-keys, want about 100 (the requester's own)", rekeys)
	}
}

func TestActiveKeysStayLowerBoundsOfPrioritiesWhileTimePasses(t *testing.T) {
	clock := new(mclock.Simulated)
	pool := newTestPool(t, nil, clock, 100, 100)
	var all []*peer
	for i := 0; i < 12; i++ {
		p := newPeer(i, time.Hour)
		if i < 8 {
			p.freeID = "10.0.0.1" // the others have addresses of their own
		}
		all = append(all, p)
	}
	registered := make(map[*peer]ConnectedBalance)
	rng := rand.New(rand.NewSource(2))
	for step := 0; step < 2000; step++ {
		p := all[rng.Intn(len(all))]
		switch b := registered[p]; {
		case rng.Intn(4) == 0:
			clock.Run(time.Duration(rng.Intn(3000)) * time.Millisecond)
		case b == nil:
			registered[p] = pool.Register(p)
		case rng.Intn(8) == 0:
			pool.Unregister(p)
			delete(registered, p)
		default:
			b.RequestServed(uint64(rng.Intn(1e9)))
		}
		pool.mu.Lock()
		now := clock.Now()
		for _, c := range pool.clients {
			if c.active {
				b := c.snapAt(now)
				if prio, key := b.priority(c.capacity), pool.effKey(c, c.key, now); key > prio {
					pool.mu.Unlock()
					t.Fatalf("step %d: a client (free ID %s) is ordered by key %d above its priority %d", step, c.freeID, key, prio)
				}
			}
		}
		pool.mu.Unlock()
	}
}

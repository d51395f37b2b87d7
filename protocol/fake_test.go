package protocol

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/vflux"
)

// fakePool is a small Backend for message-level tests: it admits up to max
// clients at minCap (others wait inactive, or are told to disconnect when their
// allowance is 0) and answers SetCapacity with a scripted function.
type fakePool struct {
	minCap uint64
	max    int

	mu         sync.Mutex
	registered map[enode.ID]clientpool.Peer
	unregs     int
	onRegister func(p clientpool.Peer) // extra callbacks during Register
	setCap     func(p clientpool.Peer, req uint64) (uint64, error)
	served     []uint64
}

func newFakePool(minCap uint64, max int) *fakePool {
	return &fakePool{minCap: minCap, max: max, registered: make(map[enode.ID]clientpool.Peer)}
}

func (f *fakePool) Register(p clientpool.Peer) clientpool.ConnectedBalance {
	f.mu.Lock()
	if _, dup := f.registered[p.Node().ID()]; dup {
		f.mu.Unlock()
		return nil
	}
	room := len(f.registered) < f.max
	f.registered[p.Node().ID()] = p
	extra := f.onRegister
	f.mu.Unlock()
	// Callbacks run on the calling goroutine, without the lock, as the real pool's.
	switch {
	case room:
		p.UpdateCapacity(f.minCap, false)
	case p.InactiveAllowance() == 0:
		p.Disconnect()
	}
	if extra != nil {
		extra(p)
	}
	return &fakeBalance{pool: f}
}

func (f *fakePool) Unregister(p clientpool.Peer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.registered[p.Node().ID()] == p {
		delete(f.registered, p.Node().ID())
	}
	f.unregs++
}

func (f *fakePool) SetCapacity(n *enode.Node, req uint64, bias time.Duration, requested bool) (uint64, error) {
	f.mu.Lock()
	p := f.registered[n.ID()]
	fn := f.setCap
	f.mu.Unlock()
	if p == nil {
		return 0, clientpool.ErrNotConnected
	}
	if fn == nil {
		return 0, errors.New("fake: no SetCapacity script")
	}
	return fn(p, req)
}

func (f *fakePool) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.registered)
}

func (f *fakePool) peer(id enode.ID) clientpool.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.registered[id]
}

func (f *fakePool) servedCosts() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.served...)
}

type fakeBalance struct{ pool *fakePool }

func (b *fakeBalance) GetBalance() (uint64, uint64) { return 0, 0 }
func (b *fakeBalance) GetRawBalance() (clientpool.ExpiredValue, clientpool.ExpiredValue) {
	return clientpool.ExpiredValue{}, clientpool.ExpiredValue{}
}
func (b *fakeBalance) GetPriceFactors() (clientpool.PriceFactors, clientpool.PriceFactors) {
	return clientpool.PriceFactors{}, clientpool.PriceFactors{}
}
func (b *fakeBalance) SetPriceFactors(pos, neg clientpool.PriceFactors) {}
func (b *fakeBalance) RequestServed(cost uint64) uint64 {
	b.pool.mu.Lock()
	b.pool.served = append(b.pool.served, cost)
	b.pool.mu.Unlock()
	return 0
}

// echoServer is a RequestServer that answers every batch with a one-reply
// Replies holding the raw batch, or nil when drop is set.
type echoServer struct {
	mu   sync.Mutex
	drop bool
	ips  []net.IP
}

func (e *echoServer) ServeEncoded(id enode.ID, ip net.IP, req []byte) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ips = append(e.ips, ip)
	if e.drop {
		return nil
	}
	enc, _ := rlp.EncodeToBytes(vflux.Replies{req})
	return enc
}

package vflux

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/discover/v5wire"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// fixedService answers every request with the same small reply.
type fixedService []byte

func (s fixedService) Handle(id enode.ID, freeID, name string, data []byte) []byte { return s }

func benchSenders(n int) ([]enode.ID, []net.IP) {
	ids, ips := make([]enode.ID, n), make([]net.IP, n)
	for i := range ids {
		ids[i] = enode.ID{byte(i), byte(i >> 8), byte(i >> 16), 1}
		ips[i] = net.IPv4(10, byte(i>>16), byte(i>>8), byte(i))
	}
	return ids, ips
}

// BenchmarkServeEncodedCapacityQuery: a one-request "cq" batch decoded, passed
// through the limiter, handled by a trivial service and its reply encoded.
func BenchmarkServeEncodedCapacityQuery(b *testing.B) {
	s := NewServer(ServerConfig{})
	defer s.Stop()
	s.Register(fixedService(mustEncode(b, CapacityQueryReply{16000})), "les", "")
	batch := mustHex("d0cf836c657382637187c681b4c3c28080")
	id, ip := enode.ID{1}, net.ParseIP("192.0.2.1")

	b.Run("one caller", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if s.ServeEncoded(id, ip, batch) == nil {
				b.Fatal("no answer")
			}
		}
	})
	b.Run("parallel callers", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Uint32
		b.RunParallel(func(pb *testing.PB) {
			n := next.Add(1)
			id, ip := enode.ID{byte(n)}, net.IPv4(10, 0, 0, byte(n))
			for pb.Next() {
				s.ServeEncoded(id, ip, batch)
			}
		})
	})
}

// BenchmarkLimiter: the limiter alone (acquire and release), senders taking
// turns: inline on one goroutine, and contended from parallel goroutines
// (queue, hand-over, wake-up).
func BenchmarkLimiter(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		ids, ips := benchSenders(n)
		b.Run(fmt.Sprintf("inline/senders=%d", n), func(b *testing.B) {
			l := newLimiter(mclock.System{}, 0, params.DefaultMaxQueuedCost, params.MaxWaiters)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				k := i % n
				if !l.acquire(ids[k], ips[k], 1, time.Second) {
					b.Fatal("dropped")
				}
				l.release()
			}
		})
		b.Run(fmt.Sprintf("contended/senders=%d", n), func(b *testing.B) {
			l := newLimiter(mclock.System{}, 0, 1<<30, params.MaxWaiters)
			var next atomic.Uint64
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := int(next.Add(1) % uint64(n))
					if l.acquire(ids[k], ips[k], 1, time.Second) {
						l.release()
					}
				}
			})
		})
	}
}

// BenchmarkSchedulerBacklog: the scheduling core with a standing queue of 128
// waiting requests; one operation enqueues a request from the next sender and
// serves the next one in fair order.
func BenchmarkSchedulerBacklog(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		ids, ips := benchSenders(n)
		keys := make([]groupKey, n)
		for i := range keys {
			keys[i] = groupKeyOf(ips[i])
		}
		b.Run(fmt.Sprintf("senders=%d", n), func(b *testing.B) {
			s := newScheduler(0, 1<<30, 1<<30)
			free := make([]*request, 0, 129)
			for i := 0; i < 129; i++ {
				free = append(free, new(request))
			}
			enqueue := func(k, cost int) {
				r := free[len(free)-1]
				free = free[:len(free)-1]
				*r = request{id: ids[k], group: keys[k], cost: uint64(cost), deadline: mclock.AbsTime(1 << 62)}
				s.enqueue(r)
			}
			for i := 0; i < 128; i++ {
				enqueue(i%n, 1)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				enqueue((i+128)%n, 1+i%16)
				r, _ := s.next(0)
				if r == nil {
					b.Fatal("nothing to serve")
				}
				s.done()
				free = append(free, r)
			}
		})
	}
}

// BenchmarkSchedulerFloodArrival: the cost of one more request arriving at a
// full queue (MaxQueuedCost of 128, all waiting): it is queued and the biggest
// offender's newest request dropped. This is what each request of a flood costs.
func BenchmarkSchedulerFloodArrival(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		ids, ips := benchSenders(n)
		keys := make([]groupKey, n)
		for i := range keys {
			keys[i] = groupKeyOf(ips[i])
		}
		b.Run(fmt.Sprintf("senders=%d", n), func(b *testing.B) {
			s := newScheduler(0, 128, params.MaxWaiters)
			s.tryStart(0, groupKey{}, 1) // the service stays busy: everyone queues
			free := make([]*request, 0, 130)
			for i := 0; i < 130; i++ {
				free = append(free, new(request))
			}
			arrive := func(k int) {
				r := free[len(free)-1]
				free = free[:len(free)-1]
				*r = request{id: ids[k], group: keys[k], cost: 1, deadline: mclock.AbsTime(1 << 62)}
				s.enqueue(r)
				free = append(free, s.dropped...)
				clear(s.dropped)
				s.dropped = s.dropped[:0]
			}
			for i := 0; i < 128; i++ {
				arrive(i % n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				arrive((i + 128) % n)
			}
			if s.waiting != 128 {
				b.Fatalf("%d waiting", s.waiting)
			}
		})
	}
}

// BenchmarkDecodeBatch: decoding a one-request batch (for comparison).
func BenchmarkDecodeBatch(b *testing.B) {
	batch := mustHex("d0cf836c657382637187c681b4c3c28080")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := decodeBatch(batch); !ok {
			b.Fatal("bad batch")
		}
	}
}

// BenchmarkDiscv5DecodeReference decodes an ordinary discv5 message packet
// (header unmasking, session lookup, AES-GCM) with go-ethereum's codec, as the
// yardstick for the limiter's overhead: measured in the same run, on the same
// (possibly busy) machine.
func BenchmarkDiscv5DecodeReference(b *testing.B) {
	newCodec := func() (*v5wire.Codec, *enode.LocalNode) {
		key, _ := crypto.GenerateKey()
		db, _ := enode.OpenDB("")
		b.Cleanup(db.Close)
		ln := enode.NewLocalNode(db, key)
		ln.SetStaticIP(net.IP{127, 0, 0, 1})
		return v5wire.NewCodec(ln, key, mclock.System{}, nil), ln
	}
	a, lnA := newCodec()
	c, lnC := newCodec()
	idA, idC := lnA.ID(), lnC.ID()
	const addrA, addrC = "127.0.0.1:30301", "127.0.0.1:30302"

	// Handshake: an unknown packet, a challenge, the handshake, then a session.
	enc, _, err := a.Encode(idC, addrC, &v5wire.Ping{ReqID: []byte{1}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	_, _, p, _ := c.Decode(enc, addrA)
	unknown, ok := p.(*v5wire.Unknown)
	if !ok {
		b.Fatalf("got %T, want Unknown", p)
	}
	challenge := &v5wire.Whoareyou{Nonce: unknown.Nonce}
	if enc, _, err = c.Encode(idA, addrA, challenge, nil); err != nil {
		b.Fatal(err)
	}
	_, _, p, err = a.Decode(enc, addrC)
	way, ok := p.(*v5wire.Whoareyou)
	if err != nil || !ok {
		b.Fatalf("got %T, %v", p, err)
	}
	way.Node = lnC.Node()
	if enc, _, err = a.Encode(idC, addrC, &v5wire.Ping{ReqID: []byte{2}}, way); err != nil {
		b.Fatal(err)
	}
	if _, _, p, err = c.Decode(enc, addrA); err != nil {
		b.Fatalf("handshake: %T, %v", p, err)
	}
	talk := &v5wire.TalkRequest{ReqID: []byte{3}, Protocol: "vfx", Message: mustHex("d0cf836c657382637187c681b4c3c28080")}
	if enc, _, err = a.Encode(idC, addrC, talk, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, p, err := c.Decode(enc, addrA); err != nil {
			b.Fatalf("%T, %v", p, err)
		}
	}
}

package vflux

import (
	"bytes"
	"errors"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// echoService answers every request with [name, freeID, params].
type echoService struct{}

type echoReply struct {
	Name, FreeID string
	Params       []byte
}

func (echoService) Handle(id enode.ID, freeID, name string, data []byte) []byte {
	if name == "silent" {
		return nil
	}
	enc, _ := rlp.EncodeToBytes(&echoReply{name, freeID, data})
	return enc
}

// funcService adapts a function to Service.
type funcService func(id enode.ID, freeID, name string, data []byte) []byte

func (f funcService) Handle(id enode.ID, freeID, name string, data []byte) []byte {
	return f(id, freeID, name, data)
}

func encodeBatch(t testing.TB, reqs Requests) []byte {
	t.Helper()
	enc, err := rlp.EncodeToBytes(reqs)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func newTestServer(t testing.TB, cfg ServerConfig) *Server {
	s := NewServer(cfg)
	t.Cleanup(s.Stop)
	if err := s.Register(echoService{}, "echo", "echoes requests"); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServerRegister(t *testing.T) {
	s := NewServer(ServerConfig{})
	defer s.Stop()
	if err := s.Register(echoService{}, "vfx", "the pool"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		svc  Service
		id   string
		want error
	}{
		{"an id containing ':' is refused", echoService{}, "vfx:1", ErrInvalidServiceID},
		{"an empty id is refused", echoService{}, "", ErrInvalidServiceID},
		{"a duplicate id is refused", echoService{}, "vfx", ErrServiceExists},
		{"a nil service is refused", nil, "other", ErrNilService},
		{"a second distinct id is accepted", echoService{}, "les", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Register(tt.svc, tt.id, ""); !errors.Is(err, tt.want) {
				t.Fatalf("Register(%q) = %v, want %v", tt.id, err, tt.want)
			}
		})
	}
	if got := s.Services(); len(got) != 2 || got[0] != (ServiceInfo{"les", ""}) || got[1] != (ServiceInfo{"vfx", "the pool"}) {
		t.Fatalf("Services() = %v", got)
	}
	s.Stop()
	if err := s.Register(echoService{}, "late", ""); !errors.Is(err, ErrServerStopped) {
		t.Fatalf("Register after Stop = %v", err)
	}
}

func TestServeRoutesRequests(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	id := enode.ID{7}
	var reqs Requests
	reqs.Add("echo", "hello", []uint{1, 2})
	reqs.Add("nosuch", "hello", []uint{3})
	reqs.Add("echo", "silent", struct{}{})
	reqs.Add("echo", "again", struct{}{})

	replies := s.Serve(id, net.ParseIP("192.0.2.1"), reqs)
	if len(replies) != len(reqs) {
		t.Fatalf("got %d replies for %d requests", len(replies), len(reqs))
	}
	var r echoReply
	if err := replies.Get(0, &r); err != nil || r.Name != "hello" || r.FreeID != "192.0.2.1" || !bytes.Equal(r.Params, reqs[0].Params) {
		t.Fatalf("reply 0: %+v, %v", r, err)
	}
	if err := replies.Get(1, &r); !errors.Is(err, ErrNoReply) {
		t.Fatalf("an unknown service got a reply: %v", err)
	}
	if err := replies.Get(2, &r); !errors.Is(err, ErrNoReply) {
		t.Fatalf("an unknown name got a reply: %v", err)
	}
	if err := replies.Get(3, &r); err != nil || r.Name != "again" {
		t.Fatalf("reply 3: %+v, %v", r, err)
	}

	t.Run("the free ID of a loopback requester is its node ID", func(t *testing.T) {
		replies := s.Serve(id, net.ParseIP("127.0.0.1"), reqs[:1])
		if err := replies.Get(0, &r); err != nil || r.FreeID != id.String() {
			t.Fatalf("reply: %+v, %v", r, err)
		}
	})
	t.Run("ServeEncoded answers with the encoding of the same replies", func(t *testing.T) {
		enc := s.ServeEncoded(id, net.ParseIP("192.0.2.1"), encodeBatch(t, reqs))
		want, _ := rlp.EncodeToBytes(replies)
		if !bytes.Equal(enc, want) {
			t.Fatalf("encoded replies %x, want %x", enc, want)
		}
	})
}

func TestServeRefusesBadBatches(t *testing.T) {
	s := newTestServer(t, ServerConfig{})
	one := Request{Service: "echo", Name: "x"}
	full := make(Requests, params.MaxRequestsPerBatch)
	for i := range full {
		full[i] = one
	}
	oversize := append(append(Requests{}, full...), one)
	good := encodeBatch(t, Requests{one})
	tests := []struct {
		name string
		enc  []byte
		nil  bool
	}{
		{"a batch of the maximum size is served", encodeBatch(t, full), false},
		{"an empty input gets no answer", nil, true},
		{"an empty batch gets no answer", encodeBatch(t, Requests{}), true},
		{"an oversize batch gets no answer", encodeBatch(t, oversize), true},
		{"a batch with trailing bytes gets no answer", append(append([]byte{}, good...), 0x80), true},
		{"a truncated batch gets no answer", good[:len(good)-1], true},
		{"a string instead of a list gets no answer", []byte{0x83, 'a', 'b', 'c'}, true},
		{"a request with a missing field gets no answer", encodeBatch(t, nil)[:0], true},
		{"a request with an extra field gets no answer", mustEncode(t, [][]interface{}{{"echo", "x", []byte{}, uint(1)}}), true},
		{"a request list of non-lists gets no answer", mustEncode(t, []uint{1, 2}), true},
		{"input over the message size limit gets no answer", append(mustEncode(t, []interface{}{Requests{one}}), make([]byte, params.MaxMessageSize)...), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.ServeEncoded(enode.ID{1}, net.ParseIP("192.0.2.1"), tt.enc)
			if (got == nil) != tt.nil {
				t.Fatalf("ServeEncoded = %x, want nil: %v", got, tt.nil)
			}
			if got := s.ServeTalk(enode.ID{1}, net.ParseIP("192.0.2.1"), tt.enc); (got == nil) != tt.nil {
				t.Fatalf("ServeTalk = %x, want nil: %v", got, tt.nil)
			}
		})
	}
	t.Run("Serve of an empty or oversize batch gets no answer", func(t *testing.T) {
		if s.Serve(enode.ID{1}, nil, nil) != nil || s.Serve(enode.ID{1}, nil, oversize) != nil {
			t.Fatal("got an answer")
		}
	})
	t.Run("refused batches are counted", func(t *testing.T) {
		if st := s.Stats(); st.Served != 2 || st.Refused != uint64(2*(len(tests)-1)+2) || st.Dropped != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func mustEncode(t testing.TB, v interface{}) []byte {
	t.Helper()
	enc, err := rlp.EncodeToBytes(v)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestHandlersNeverRunConcurrently(t *testing.T) {
	var running, maxRunning, served atomic.Int32
	svc := funcService(func(id enode.ID, freeID, name string, data []byte) []byte {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		served.Add(1)
		for i := 0; i < 100; i++ { // give another goroutine the chance to overlap
			_ = rand.Int()
		}
		running.Add(-1)
		return []byte{1}
	})
	s := NewServer(ServerConfig{MaxWait: time.Minute, MaxQueuedCost: 1 << 20, MaxWaiters: 1 << 20})
	defer s.Stop()
	s.Register(svc, "a", "")
	s.Register(svc, "b", "")
	batch := encodeBatch(t, Requests{{Service: "a", Name: "x"}, {Service: "b", Name: "y"}})

	const callers, calls = 32, 20
	var wg sync.WaitGroup
	var answered atomic.Int32
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				if s.ServeEncoded(enode.ID{byte(c)}, net.IPv4(10, 0, 0, byte(c%4)), batch) != nil {
					answered.Add(1)
				}
			}
		}(c)
	}
	wg.Wait()
	if maxRunning.Load() != 1 {
		t.Fatalf("up to %d handlers ran at once", maxRunning.Load())
	}
	if answered.Load() != callers*calls || served.Load() != 2*callers*calls {
		t.Fatalf("answered %d batches with %d handler calls, want %d and %d", answered.Load(), served.Load(), callers*calls, 2*callers*calls)
	}
}

func TestServerStop(t *testing.T) {
	block, entered := make(chan struct{}), make(chan struct{})
	svc := funcService(func(id enode.ID, freeID, name string, data []byte) []byte {
		if name == "block" {
			close(entered)
			<-block
		}
		return []byte{1}
	})
	s := NewServer(ServerConfig{MaxWait: time.Minute})
	waits := make(chan int, 1)
	s.limiter.waitHook = func(n int) { waits <- n }
	s.Register(svc, "svc", "")
	blocking := encodeBatch(t, Requests{{Service: "svc", Name: "block"}})
	plain := encodeBatch(t, Requests{{Service: "svc", Name: "plain"}})

	first := make(chan []byte)
	go func() { first <- s.ServeEncoded(enode.ID{1}, nil, blocking) }()
	<-entered
	second := make(chan []byte)
	go func() { second <- s.ServeEncoded(enode.ID{2}, nil, plain) }()
	<-waits

	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	// The waiting batch is dropped while the first handler still runs.
	select {
	case got := <-second:
		if got != nil {
			t.Fatalf("a batch waiting at Stop was answered: %x", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a batch waiting at Stop was not dropped")
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned while a handler was running")
	default:
	}
	close(block)
	<-stopped
	if got := <-first; got == nil {
		t.Fatal("the batch running at Stop lost its answer")
	}
	if s.ServeEncoded(enode.ID{1}, nil, plain) != nil || s.Serve(enode.ID{1}, nil, Requests{{Service: "svc"}}) != nil || s.ServeTalk(enode.ID{1}, nil, plain) != nil {
		t.Fatal("a call after Stop was answered")
	}
	s.Stop() // a second Stop is harmless
}

func TestServeTalkReplyBudget(t *testing.T) {
	sizes := map[string]int{}
	svc := funcService(func(id enode.ID, freeID, name string, data []byte) []byte {
		return bytes.Repeat([]byte{0xaa}, sizes[name])
	})
	s := NewServer(ServerConfig{})
	defer s.Stop()
	s.Register(svc, "svc", "")

	t.Run("replies past the budget are empty and earlier ones kept", func(t *testing.T) {
		sizes["big"] = 300
		sizes["small"] = 10
		reqs := Requests{{"svc", "big", nil}, {"svc", "big", nil}, {"svc", "big", nil}, {"svc", "big", nil}, {"svc", "small", nil}}
		enc := s.ServeTalk(enode.ID{1}, nil, encodeBatch(t, reqs))
		if len(enc) > params.TalkReplyBudget {
			t.Fatalf("encoded replies take %d bytes", len(enc))
		}
		var replies Replies
		if err := rlp.DecodeBytes(enc, &replies); err != nil || len(replies) != len(reqs) {
			t.Fatalf("decoded %d replies, %v", len(replies), err)
		}
		for i, r := range replies {
			if want := i < 3; (len(r) == 300) != want || (!want && len(r) != 0) {
				t.Fatalf("reply %d has %d bytes", i, len(r))
			}
		}
		// ServeEncoded (RLPx) does not cut.
		var full Replies
		rlp.DecodeBytes(s.ServeEncoded(enode.ID{1}, nil, encodeBatch(t, reqs)), &full)
		if len(full) != 5 || len(full[3]) != 300 || len(full[4]) != 10 {
			t.Fatal("ServeEncoded cut the replies")
		}
	})
	t.Run("random reply sizes keep the longest prefix that fits", func(t *testing.T) {
		rng := rand.New(rand.NewSource(1))
		for round := 0; round < 500; round++ {
			n := 1 + rng.Intn(params.MaxRequestsPerBatch)
			replies := make(Replies, n)
			for i := range replies {
				replies[i] = bytes.Repeat([]byte{byte(rng.Intn(256))}, rng.Intn([]int{2, 60, 300, 1100}[rng.Intn(4)]))
			}
			orig := append(Replies{}, replies...)
			fit := fitReplies(replies, params.TalkReplyBudget)
			enc, _ := rlp.EncodeToBytes(fit)
			if len(enc) > params.TalkReplyBudget {
				t.Fatalf("round %d: %d bytes", round, len(enc))
			}
			cut := n // the first reply that was cut
			for i := range fit {
				if !bytes.Equal(fit[i], orig[i]) {
					cut = i
					break
				}
			}
			for i := cut; i < n; i++ {
				if len(fit[i]) != 0 {
					t.Fatalf("round %d: reply %d kept after a cut one", round, i)
				}
			}
			if cut < n {
				more := append(append(Replies{}, orig[:cut+1]...), make(Replies, n-cut-1)...)
				if enc, _ := rlp.EncodeToBytes(more); len(enc) <= params.TalkReplyBudget {
					t.Fatalf("round %d: reply %d was cut but fits (%d bytes)", round, cut, len(enc))
				}
			}
		}
	})
}

// TestStopUnderLoad stops a server while many goroutines are waiting in its
// limiter: every call returns, none is answered after Stop returned.
func TestStopUnderLoad(t *testing.T) {
	s := NewServer(ServerConfig{Rate: 500, MaxWait: time.Minute, MaxQueuedCost: 1 << 20})
	s.Register(echoService{}, "echo", "")
	batch := encodeBatch(t, Requests{{Service: "echo", Name: "x"}})
	var (
		wg         sync.WaitGroup
		stopped    atomic.Bool
		lateAnswer atomic.Bool
		served     = make(chan struct{}, 1)
	)
	for c := 0; c < 64; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				wasStopped := stopped.Load()
				if s.ServeTalk(enode.ID{byte(c)}, net.IPv4(10, 0, byte(c%5), 1), batch) != nil {
					if wasStopped {
						lateAnswer.Store(true)
					}
					select {
					case served <- struct{}{}:
					default:
					}
				}
			}
		}(c)
	}
	<-served // the server is busy serving
	s.Stop()
	stopped.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("callers still blocked after Stop")
	}
	if lateAnswer.Load() {
		t.Fatal("a call started after Stop returned was answered")
	}
	if s.limiter.waiting() != 0 {
		t.Fatal("requests still waiting after Stop")
	}
}

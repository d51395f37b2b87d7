package vflux

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// Errors of Server.Register.
var (
	// ErrInvalidServiceID: a service id must be non-empty and contain no ':'.
	ErrInvalidServiceID = errors.New("vflux: invalid service id")
	// ErrServiceExists: a service is already registered under that id.
	ErrServiceExists = errors.New("vflux: service already registered")
	// ErrNilService: Register was given a nil Service.
	ErrNilService = errors.New("vflux: nil service")
	// ErrServerStopped: the server has been stopped.
	ErrServerStopped = errors.New("vflux: server stopped")
)

// ServerConfig configures a Server. Zero values select the defaults.
type ServerConfig struct {
	// Clock drives the limiter's rate and wait bounds; nil means mclock.System.
	// With mclock.Simulated, a batch that has to wait (the service is busy or the
	// rate is spent) waits until the clock is Run: tests that do not drive the
	// clock should leave Rate at 0 or use the system clock.
	Clock mclock.Clock
	// Rate is the global rate of served requests per second (a batch of n
	// requests counts n); 0, a negative number or NaN means unlimited.
	Rate float64
	// MaxQueuedCost bounds the total cost of waiting batches; over it, the
	// biggest offender's queue is dropped. 0 means params.DefaultMaxQueuedCost.
	MaxQueuedCost uint64
	// MaxWait is the longest a batch given to Serve or ServeEncoded waits for
	// the service before it is dropped; 0 means params.TalkMaxWait. ServeTalk
	// waits at most params.TalkMaxWait whatever this says.
	MaxWait time.Duration
	// MaxWaiters bounds the number of waiting batches; 0 means params.MaxWaiters.
	MaxWaiters int
}

// Server routes vflux request batches to named services through a fair,
// DoS-resistant limiter. One Server is shared by every transport (TALKREQ and
// the RLPx capability), so they share one service and one fairness budget.
//
// How a transport picks its wait bound: per entry point. ServeTalk is for
// discv5 TALKREQ: it waits at most params.TalkMaxWait (well inside discv5's
// ~200 ms handler budget) and cuts the replies to params.TalkReplyBudget bytes.
// Serve and ServeEncoded wait at most ServerConfig.MaxWait and do not cut.
type Server struct {
	cfg     ServerConfig
	limiter *limiter
	stopped atomic.Bool

	served, dropped, refused atomic.Uint64
	lastDropLog              atomic.Int64 // mclock time of the last drop log line
	droppedLogged            atomic.Uint64

	// mu is held while handlers run, so they never run concurrently, and guards
	// services. Lock order: the limiter's lock is never held while taking mu.
	mu       sync.Mutex
	services map[string]serviceEntry
}

// dropLogInterval: drops are logged at most this often, with a count, never
// per request (a flood would flood the log too).
const dropLogInterval = 10 * time.Second

// ServerStats counts what a Server did with the batches it was given.
type ServerStats struct {
	Served  uint64 // batches answered
	Dropped uint64 // batches dropped by the limiter (wait bound, queue bounds, Stop)
	Refused uint64 // batches refused unserved: undecodable, empty, oversize, or after Stop
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Served: s.served.Load(), Dropped: s.dropped.Load(), Refused: s.refused.Load()}
}

type serviceEntry struct {
	svc  Service
	desc string
}

// ServiceInfo describes a registered service.
type ServiceInfo struct {
	ID, Desc string
}

// NewServer creates a server with no services.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Clock == nil {
		cfg.Clock = mclock.System{}
	}
	if !(cfg.Rate > 0) {
		cfg.Rate = 0
	}
	if cfg.MaxQueuedCost == 0 {
		cfg.MaxQueuedCost = params.DefaultMaxQueuedCost
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = params.TalkMaxWait
	}
	if cfg.MaxWaiters <= 0 {
		cfg.MaxWaiters = params.MaxWaiters
	}
	return &Server{
		cfg:      cfg,
		limiter:  newLimiter(cfg.Clock, cfg.Rate, cfg.MaxQueuedCost, cfg.MaxWaiters),
		services: make(map[string]serviceEntry),
	}
}

// Register adds a service under id, with a human-readable description. The id
// may not be empty or contain ':', and may be registered only once.
func (s *Server) Register(svc Service, id, desc string) error {
	if svc == nil {
		return fmt.Errorf("register %q: %w", id, ErrNilService)
	}
	if id == "" || strings.Contains(id, ":") {
		return fmt.Errorf("register %q: %w", id, ErrInvalidServiceID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped.Load() {
		return fmt.Errorf("register %q: %w", id, ErrServerStopped)
	}
	if _, ok := s.services[id]; ok {
		return fmt.Errorf("register %q: %w", id, ErrServiceExists)
	}
	s.services[id] = serviceEntry{svc: svc, desc: desc}
	return nil
}

// Services lists the registered services, sorted by id.
func (s *Server) Services() []ServiceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]ServiceInfo, 0, len(s.services))
	for id, e := range s.services {
		list = append(list, ServiceInfo{ID: id, Desc: e.desc})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return list
}

// Serve answers a batch from the node id at address ip. It returns nil (no
// answer at all) for an empty or oversize batch, when the limiter drops the
// batch, and after Stop. An unknown service or name gets an empty reply in its
// slot. It may block up to ServerConfig.MaxWait for the service.
func (s *Server) Serve(id enode.ID, ip net.IP, reqs Requests) Replies {
	return s.serve(id, ip, reqs, s.cfg.MaxWait)
}

// ServeEncoded is Serve on an RLP-encoded batch, returning the encoded replies,
// or nil when the batch cannot be decoded or gets no answer.
func (s *Server) ServeEncoded(id enode.ID, ip net.IP, req []byte) []byte {
	reqs, ok := decodeBatch(req)
	if !ok {
		s.refused.Add(1)
		return nil
	}
	return encodeReplies(s.serve(id, ip, reqs, s.cfg.MaxWait))
}

// ServeTalk is ServeEncoded for discv5 TALKREQ: the batch waits at most
// params.TalkMaxWait (or ServerConfig.MaxWait if shorter), and the encoded
// replies fit in params.TalkReplyBudget bytes: replies past the budget are
// replaced by empty ones, earlier ones kept.
func (s *Server) ServeTalk(id enode.ID, ip net.IP, req []byte) []byte {
	reqs, ok := decodeBatch(req)
	if !ok {
		s.refused.Add(1)
		return nil
	}
	wait := min(s.cfg.MaxWait, params.TalkMaxWait)
	return encodeReplies(fitReplies(s.serve(id, ip, reqs, wait), params.TalkReplyBudget))
}

// Stop stops the server: waiting batches are dropped, a running handler is
// waited for, and every later call returns nil. It must not be called from a
// handler. A second Stop does nothing.
func (s *Server) Stop() {
	if s.stopped.Swap(true) {
		return
	}
	s.limiter.stop()
	s.mu.Lock() // waits for a running handler to return
	s.mu.Unlock()
}

func (s *Server) serve(id enode.ID, ip net.IP, reqs Requests, maxWait time.Duration) Replies {
	if s.stopped.Load() || len(reqs) == 0 || len(reqs) > params.MaxRequestsPerBatch {
		s.refused.Add(1)
		return nil
	}
	if !s.limiter.acquire(id, ip, uint64(len(reqs)), maxWait) {
		s.dropped.Add(1)
		s.logDrops()
		return nil
	}
	defer s.limiter.release()
	freeID := FreeClientID(id, ip)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped.Load() {
		s.dropped.Add(1)
		return nil
	}
	s.served.Add(1)
	replies := make(Replies, len(reqs))
	for i, req := range reqs {
		if e, ok := s.services[req.Service]; ok {
			replies[i] = e.svc.Handle(id, freeID, req.Name, req.Params)
		}
	}
	return replies
}

// logDrops logs the drops since the last line, at most every dropLogInterval.
func (s *Server) logDrops() {
	now := int64(s.cfg.Clock.Now())
	last := s.lastDropLog.Load()
	if now-last < int64(dropLogInterval) && last != 0 || !s.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	dropped := s.dropped.Load()
	log.Warn("vflux requests dropped: server overloaded", "dropped", dropped-s.droppedLogged.Swap(dropped),
		"waiting", s.limiter.waiting(), "served", s.served.Load())
}

// decodeBatch decodes an encoded batch, refusing oversize input, trailing
// bytes, and empty or oversize batches before decoding their requests.
func decodeBatch(req []byte) (Requests, bool) {
	if len(req) == 0 || len(req) > params.MaxMessageSize {
		return nil, false
	}
	content, rest, err := rlp.SplitList(req)
	if err != nil || len(rest) != 0 {
		return nil, false
	}
	n, err := rlp.CountValues(content)
	if err != nil || n == 0 || n > params.MaxRequestsPerBatch {
		return nil, false
	}
	var reqs Requests
	if err := rlp.DecodeBytes(req, &reqs); err != nil {
		return nil, false
	}
	return reqs, true
}

func encodeReplies(replies Replies) []byte {
	if replies == nil {
		return nil
	}
	enc, err := rlp.EncodeToBytes(replies)
	if err != nil {
		return nil // cannot happen: a list of byte strings always encodes
	}
	return enc
}

// fitReplies replaces the replies that would take the encoding past budget
// bytes, and all after them, by empty ones.
func fitReplies(replies Replies, budget int) Replies {
	payload := len(replies) // every reply empty: one byte each
	for i, r := range replies {
		extra := stringSize(r) - 1
		if listSize(payload+extra) > budget {
			for j := i; j < len(replies); j++ {
				replies[j] = nil
			}
			break
		}
		payload += extra
	}
	return replies
}

// stringSize is the size of the RLP encoding of the byte string b.
func stringSize(b []byte) int {
	switch {
	case len(b) == 1 && b[0] < 0x80:
		return 1
	case len(b) < 56:
		return 1 + len(b)
	default:
		return 1 + intSize(len(b)) + len(b)
	}
}

// listSize is the size of the RLP encoding of a list with payload bytes of content.
func listSize(payload int) int {
	if payload < 56 {
		return 1 + payload
	}
	return 1 + intSize(payload) + payload
}

// intSize is the number of bytes of the big-endian form of n > 0.
func intSize(n int) int {
	size := 0
	for ; n > 0; n >>= 8 {
		size++
	}
	return size
}

package node

import (
	"io"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/protocol"
)

// flowConfig holds the metering constants of governed protocols.
type flowConfig struct {
	clock               mclock.Clock
	minCap              uint64
	costBase, costPerKB uint64
	bufferSecs          uint64
	queueBytes          int // bound of a client's held inbound messages
	// costs are Config.GovernCosts by protocol name and code.
	costs map[string]map[uint64]uint64
}

// codeCosts indexes a cost table by protocol name and message code.
func codeCosts(table []MessageCost) map[string]map[uint64]uint64 {
	out := make(map[string]map[uint64]uint64)
	for _, mc := range table {
		if out[mc.Protocol] == nil {
			out[mc.Protocol] = make(map[uint64]uint64)
		}
		out[mc.Protocol][mc.Code] = mc.Cost
	}
	return out
}

// flow is the flow control of one client's governed protocols: one buffer
// (protocol.Meter) and one bounded queue of held inbound messages, shared by
// all of its governed protocols. Each protocol run is a stream: a pump
// goroutine reads the connection into the queue, and the protocol's ReadMsg
// takes messages out when the client is active and their cost fits.
type flow struct {
	cfg flowConfig

	// mu guards everything below and the streams' queues. It is a leaf lock:
	// nothing is called with it held but the meter and non-blocking signals.
	mu      sync.Mutex
	meter   *protocol.Meter
	balance clientpool.ConnectedBalance // nil until the pool registered the client
	// told is the capacity the pool last told the client: the meter's rate
	// while it is above 0. It is flow state, never reported (the pool's
	// ClientInfo is the client's capacity).
	told    uint64
	closed  error // set once: every stream's ReadMsg returns it
	queued  int   // bytes held in all streams' queues
	streams map[*stream]struct{}
	served  uint64 // cost charged so far
	waits   uint64 // times a message waited for the buffer to recharge
}

func newFlow(cfg flowConfig) *flow {
	return &flow{
		cfg:     cfg,
		meter:   protocol.NewMeter(cfg.clock, cfg.minCap, cfg.bufferSecs),
		streams: make(map[*stream]struct{}),
	}
}

// setBalance is called once the pool registered the client; a capacity the
// pool granted during Register takes effect from now on.
func (f *flow) setBalance(bal clientpool.ConnectedBalance) {
	f.mu.Lock()
	f.balance = bal
	f.mu.Unlock()
	f.wakeAll()
}

// connectedBalance returns the balance the flow charges (nil until the pool
// registered the client).
func (f *flow) connectedBalance() clientpool.ConnectedBalance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.balance
}

// setCapacity changes the recharge rate; 0 makes the client inactive (its
// messages wait). An inactive client's buffer keeps recharging at its last rate.
func (f *flow) setCapacity(capacity uint64) {
	f.mu.Lock()
	f.told = capacity
	if capacity > 0 {
		f.meter.SetRate(capacity)
	}
	f.mu.Unlock()
	f.wakeAll()
}

// capacity returns the capacity the pool last told the client (0: inactive).
func (f *flow) capacity() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.told
}

// close ends every stream's ReadMsg with reason and frees the held messages.
func (f *flow) close(reason error) {
	f.mu.Lock()
	if f.closed == nil {
		f.closed = reason
		for s := range f.streams {
			s.drop()
		}
		f.queued = 0
	}
	f.mu.Unlock()
	f.wakeAll()
}

func (f *flow) wakeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.streams {
		signal(s.avail)
		signal(s.room)
	}
}

// signal wakes the waiter of a capacity-1 channel without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// stream is one governed protocol run: the p2p.MsgReadWriter its Run gets.
type stream struct {
	f     *flow
	costs map[uint64]uint64 // the protocol's entries of the cost table; may be nil
	rw    p2p.MsgReadWriter // the connection's
	run   chan struct{}     // closed when the protocol's Run returned

	avail chan struct{} // capacity 1: the queue or the flow changed (for ReadMsg)
	room  chan struct{} // capacity 1: queue room was freed (for the pump)
	timer mclock.ChanTimer

	// guarded by f.mu
	queue   []p2p.Msg // held inbound messages, in order; queue[head:] waits
	head    int
	readErr error // the pump's read error, returned once the queue is empty
	inDone  bool  // the first inbound message (the handshake) went through
	outDone bool  // the first outbound message went through
}

func (f *flow) newStream(protocol string, rw p2p.MsgReadWriter) *stream {
	s := &stream{f: f, costs: f.cfg.costs[protocol], rw: rw, run: make(chan struct{}), avail: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	f.mu.Lock()
	f.streams[s] = struct{}{}
	f.mu.Unlock()
	return s
}

// drop frees the held messages; f.mu is held.
func (s *stream) drop() {
	for i := s.head; i < len(s.queue); i++ {
		s.f.queued -= int(s.queue[i].Size)
		s.queue[i] = p2p.Msg{}
	}
	s.queue, s.head = s.queue[:0], 0
}

// compact moves the waiting messages to the front of the queue once at least
// half of it is taken ones, so a queue that never empties (a flooder's) does
// not grow its backing array without bound; f.mu is held.
func (s *stream) compact() {
	if s.head == 0 || s.head < len(s.queue)/2 {
		return
	}
	n := copy(s.queue, s.queue[s.head:])
	clear(s.queue[n:])
	s.queue, s.head = s.queue[:n], 0
}

// end is called when the protocol's Run returned: the stream's held messages
// are freed, its pump stops holding new ones, and a goroutine of the protocol
// still in ReadMsg gets io.EOF.
func (s *stream) end() {
	close(s.run)
	s.f.mu.Lock()
	if s.f.closed == nil {
		s.drop()
	}
	delete(s.f.streams, s)
	s.f.mu.Unlock()
	s.f.wakeAll() // the freed room may let another stream's pump go on
}

// pump reads the connection into the queue until the read fails or the
// protocol ends. It stops reading (backpressure through RLPx and TCP) only
// while the client's queue is full; a message larger than the whole bound is
// held alone. The payloads are already in memory (go-ethereum's RLPx copies
// each message), so holding a p2p.Msg holds its Size bytes.
func (s *stream) pump() {
	f := s.f
	for {
		msg, err := s.rw.ReadMsg()
		if err != nil {
			f.mu.Lock()
			s.readErr = err
			f.mu.Unlock()
			signal(s.avail)
			return
		}
		for {
			f.mu.Lock()
			if f.closed != nil {
				f.mu.Unlock()
				return // nothing more is served; the peer is being disconnected
			}
			if f.queued == 0 || f.queued+int(msg.Size) <= f.cfg.queueBytes {
				s.compact()
				s.queue = append(s.queue, msg)
				f.queued += int(msg.Size)
				f.mu.Unlock()
				signal(s.avail)
				break
			}
			f.mu.Unlock()
			select {
			case <-s.room:
			case <-s.run:
				return
			}
		}
	}
}

// ReadMsg implements p2p.MsgReader for the governed protocol: the stream's
// first message (its handshake) at once, later ones in order once the client
// is active and the message's admission cost (CostBase plus CostPerKB per KiB)
// fits in the buffer; the cost is charged to the buffer and the balance.
func (s *stream) ReadMsg() (p2p.Msg, error) {
	f := s.f
	for {
		f.mu.Lock()
		if f.closed != nil {
			err := f.closed
			f.mu.Unlock()
			return p2p.Msg{}, err
		}
		var wait time.Duration
		if s.head < len(s.queue) {
			msg := s.queue[s.head]
			var cost uint64
			ok := !s.inDone
			if !ok && f.told > 0 && f.balance != nil {
				cost = s.admissionCost(msg)
				if wait, ok = f.meter.Admit(cost); ok {
					f.meter.Charge(cost)
					f.served += cost
				} else {
					f.waits++
				}
			}
			if ok {
				s.inDone = true
				s.queue[s.head] = p2p.Msg{}
				s.head++
				f.queued -= int(msg.Size)
				bal := f.balance
				f.mu.Unlock()
				f.roomFreed()
				if cost > 0 {
					bal.RequestServed(cost)
				}
				return msg, nil
			}
		} else if s.readErr != nil {
			err := s.readErr
			f.mu.Unlock()
			return p2p.Msg{}, err
		}
		f.mu.Unlock()
		if wait > 0 {
			s.sleep(wait)
			continue
		}
		select {
		case <-s.avail:
		case <-s.run:
			// Run returned but one of its goroutines still reads (eth's
			// handshake reader after a timeout): nothing more comes.
			return p2p.Msg{}, io.EOF
		}
	}
}

// admissionCost is the cost of an inbound message: the table's, or CostBase
// plus CostPerKB per KiB.
func (s *stream) admissionCost(msg p2p.Msg) uint64 {
	if c, ok := s.costs[msg.Code]; ok {
		return c
	}
	return protocol.AdmissionCost(s.f.cfg.costBase, s.f.cfg.costPerKB, int(msg.Size))
}

// sleep waits until the buffer may have recharged enough, or anything changes.
func (s *stream) sleep(d time.Duration) {
	if s.timer == nil {
		s.timer = s.f.cfg.clock.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-s.timer.C():
	case <-s.avail:
		s.timer.Stop()
	case <-s.run:
		s.timer.Stop()
	}
}

// roomFreed wakes the pumps of the client's streams waiting for queue room.
func (f *flow) roomFreed() {
	f.mu.Lock()
	for s := range f.streams {
		signal(s.room)
	}
	f.mu.Unlock()
}

// WriteMsg implements p2p.MsgWriter: outbound messages are never held; after
// the first (the handshake) each is charged CostPerKB per KiB.
func (s *stream) WriteMsg(msg p2p.Msg) error {
	f := s.f
	f.mu.Lock()
	var cost uint64
	var bal clientpool.ConnectedBalance
	if s.outDone {
		cost = protocol.RequestCost(0, f.cfg.costPerKB, 0, int(msg.Size))
		if bal = f.balance; bal != nil && cost > 0 {
			f.meter.Charge(cost)
			f.served += cost
		}
	}
	s.outDone = true
	f.mu.Unlock()
	if bal != nil && cost > 0 {
		bal.RequestServed(cost)
	}
	return s.rw.WriteMsg(msg)
}

// stats returns the cost charged so far, the number of waits for the buffer
// and the bytes held now.
func (f *flow) stats() (served, waits uint64, queued int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served, f.waits, f.queued
}

package protocol

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/clientpool"
)

// TestTwoHundredClientsChurnConcurrentlyWithinTheLimits connects 200 clients at
// once to one server with limits (50, 50*minCap) and 100 p2p slots (maxclients
// + maxinactive, SPEC 6 item 5). Each client that gets in asks a capacity query
// and leaves. The pool's limits hold after every pool event, everything is
// unregistered at the end and the goroutines return to the baseline.
func TestTwoHundredClientsChurnConcurrentlyWithinTheLimits(t *testing.T) {
	const (
		clients  = 200
		maxCount = 50
	)
	// Warm up once so lazily started process-wide goroutines are in the baseline.
	t.Run("warm-up", func(t *testing.T) {
		n := startRealNode(t, realNodeConfig{maxCount: 1, maxCap: testMinCap, allowance: time.Second})
		cl := startVfxClient(t).dial(t, n.vfxServer)
		cl.Close()
		waitDone(t, cl)
	})
	baseline := runtime.NumGoroutine()

	t.Run("churn", func(t *testing.T) {
		n := startRealNode(t, realNodeConfig{poolClock: mclock.System{}, maxCount: maxCount, maxCap: maxCount * testMinCap,
			allowance: 300 * time.Millisecond, pos: defaultFactors, neg: defaultFactors})

		// Check the limits on every pool event while the churn runs.
		events := make(chan clientpool.Event, 1024)
		sub := n.pool.SubscribeEvents(events)
		var violations atomic.Int64
		var seen, maxActive, maxInactive atomic.Int64
		checkerDone := make(chan struct{})
		go func() {
			defer close(checkerDone)
			for {
				select {
				case <-events:
					seen.Add(1)
					count, capacity := n.pool.Active()
					if count > maxCount || capacity > maxCount*testMinCap {
						violations.Add(1)
					}
					if int64(count) > maxActive.Load() {
						maxActive.Store(int64(count))
					}
					if in := int64(n.pool.Inactive()); in > maxInactive.Load() {
						maxInactive.Store(in)
					}
				case <-sub.Err():
					return
				}
			}
		}()

		cs := make([]*vfxClient, clients)
		for i := range cs {
			cs[i] = startVfxClient(t)
		}
		var (
			wg                          sync.WaitGroup
			connected, queried, refused atomic.Int64
			failures                    = make(chan error, clients)
		)
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Clients turned away at the p2p door (all 100 slots taken) get no
				// event: their dial ends only with this deadline.
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				cl, err := c.peers.Dial(ctx, c.srv, n.srv.Self())
				if err != nil {
					refused.Add(1) // no slot, or evicted during the handshake
					return
				}
				connected.Add(1)
				qctx, qcancel := context.WithTimeout(context.Background(), netTimeout)
				defer qcancel()
				start := time.Now()
				if _, err := cl.Vflux(qctx, cqBatch(t)); err == nil {
					queried.Add(1)
				} else if !errors.Is(err, ErrDisconnected) {
					failures <- fmt.Errorf("query after %v: %w", time.Since(start), err)
				}
				cl.Close()
				select {
				case <-cl.Done():
				case <-time.After(netTimeout):
					failures <- errors.New("client did not finish after Close")
				}
			}()
		}
		wg.Wait()
		close(failures)
		for err := range failures {
			t.Error(err)
		}
		t.Logf("%d connected (%d queried), %d refused, %d pool events checked, at most %d active and %d inactive",
			connected.Load(), queried.Load(), refused.Load(), seen.Load(), maxActive.Load(), maxInactive.Load())
		if maxActive.Load() != maxCount {
			t.Errorf("the pool never filled (at most %d active): the limits were not exercised", maxActive.Load())
		}
		if connected.Load() < maxCount {
			t.Fatalf("only %d of %d clients got in", connected.Load(), clients)
		}
		// Every peer loop has ended and unregistered its client; none ended in
		// a protocol error.
		n.watcher.WaitAllDropped(netTimeout)
		if n.h.PeerCount() != 0 {
			t.Fatalf("%d vfx loops left", n.h.PeerCount())
		}
		for _, ev := range n.watcher.Events() {
			if ev.Type != p2p.PeerEventTypeDrop {
				continue
			}
			switch ev.Error {
			// Requested: the client left. TooManyPeers: evicted or timed out
			// waiting. UselessPeer: a client whose dial deadline passed refused
			// the connection that completed after it.
			case p2p.DiscRequested.Error(), p2p.DiscTooManyPeers.Error(), p2p.DiscUselessPeer.Error():
			default:
				t.Errorf("a client was dropped with %q", ev.Error)
			}
		}
		if count, capacity := n.pool.Active(); count != 0 || capacity != 0 || n.pool.Inactive() != 0 {
			t.Fatalf("pool not empty: active %d/%d, inactive %d", count, capacity, n.pool.Inactive())
		}
		sub.Unsubscribe()
		<-checkerDone
		if v := violations.Load(); v != 0 {
			t.Fatalf("limits exceeded after %d of %d pool events", v, seen.Load())
		}
	})

	// Everything the churn started has stopped.
	deadline := time.Now().Add(netTimeout)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d goroutines, baseline %d", runtime.NumGoroutine(), baseline)
		}
		time.Sleep(10 * time.Millisecond) // polling a count with a deadline
	}
}

package node

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
)

// gaugePeer is a minimal clientpool.Peer: a free client that ignores updates.
type gaugePeer struct{ n *enode.Node }

func (p gaugePeer) Node() *enode.Node                { return p.n }
func (p gaugePeer) FreeClientID() string             { return p.n.ID().String() }
func (p gaugePeer) InactiveAllowance() time.Duration { return time.Hour }
func (p gaugePeer) UpdateCapacity(uint64, bool)      {}
func (p gaugePeer) Disconnect()                      {}

func TestTheDroppedEventsGaugeCountsEventsASlowSubscriberLost(t *testing.T) {
	pool := clientpool.NewClientPool(nil, 1, 0, &mclock.Simulated{}, nil)
	pool.SetLimits(1, 1)
	pool.Start()
	defer pool.Stop()
	slow := make(chan clientpool.Event) // never read
	sub := pool.SubscribeEvents(slow)
	defer sub.Unsubscribe()

	// Each client causes at least two events (connected, disconnected): twice
	// the queue size cannot all fit.
	for i := 0; i < params.EventQueueSize; i++ {
		p := gaugePeer{enode.SignNull(new(enr.Record), enode.ID{byte(i), byte(i >> 8), 0xfe})}
		pool.Register(p)
		pool.Unregister(p)
	}
	dropped := pool.DroppedEvents()
	if dropped == 0 {
		t.Fatal("no event dropped for a subscriber that reads nothing")
	}
	updateGauges(pool)
	if got := droppedEventsGauge.Snapshot().Value(); got != int64(dropped) {
		t.Fatalf("vflux_events_dropped_total = %d, want the pool's %d", got, dropped)
	}
}

func TestARefusedClientIsNotCountedAsADisconnect(t *testing.T) {
	before := disconnectedMeter.Snapshot().Count()
	markEvent(clientpool.Event{Type: clientpool.EventDisconnected, Reason: clientpool.ReasonTooManyFromAddress})
	if got := disconnectedMeter.Snapshot().Count(); got != before {
		t.Fatalf("a refusal moved vflux_clients_disconnected_total from %d to %d; it never connected", before, got)
	}
	markEvent(clientpool.Event{Type: clientpool.EventDisconnected, Reason: clientpool.ReasonPeerLeft})
	if got := disconnectedMeter.Snapshot().Count(); got != before+1 {
		t.Fatalf("a client that left moved vflux_clients_disconnected_total from %d to %d, want +1", before, got)
	}
}

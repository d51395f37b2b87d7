package node

import (
	"github.com/ethereum/go-ethereum/metrics"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/vflux"
)

// Metrics of SPEC 6, registered once in go-ethereum's default registry (the
// request meters vflux/server/request/* belong to package protocol; TALKREQ
// batches are counted into the same meters here). GetOrRegister keeps a
// second registration of the same name pointing at the same metric.
var (
	activeCountGauge   = metrics.GetOrRegisterGauge("vflux/server/active/count", nil)
	activeCapGauge     = metrics.GetOrRegisterGauge("vflux/server/active/capacity", nil)
	inactiveCountGauge = metrics.GetOrRegisterGauge("vflux/server/inactive/count", nil)
	totalTokensGauge   = metrics.GetOrRegisterGauge("vflux/server/totalTokens", nil)
	// droppedEventsGauge is the number of pool events subscribers lost to a
	// full queue (SPEC 3.1), the pool's DroppedEvents.
	droppedEventsGauge = metrics.GetOrRegisterGauge("vflux/server/events/dropped", nil)

	connectedMeter    = metrics.GetOrRegisterMeter("vflux/server/clientEvent/connected", nil)
	activatedMeter    = metrics.GetOrRegisterMeter("vflux/server/clientEvent/activated", nil)
	deactivatedMeter  = metrics.GetOrRegisterMeter("vflux/server/clientEvent/deactivated", nil)
	disconnectedMeter = metrics.GetOrRegisterMeter("vflux/server/clientEvent/disconnected", nil)

	capQueryZeroMeter    = metrics.GetOrRegisterMeter("vflux/server/capQuery/zero", nil)
	capQueryNonZeroMeter = metrics.GetOrRegisterMeter("vflux/server/capQuery/nonzero", nil)

	talkServedMeter  = metrics.GetOrRegisterMeter("vflux/server/request/served", nil)
	talkDroppedMeter = metrics.GetOrRegisterMeter("vflux/server/request/dropped", nil)
)

// markEvent counts a pool event in its clientEvent meter.
func markEvent(ev clientpool.Event) {
	switch ev.Type {
	case clientpool.EventConnected:
		connectedMeter.Mark(1)
	case clientpool.EventActivated:
		activatedMeter.Mark(1)
	case clientpool.EventDeactivated:
		deactivatedMeter.Mark(1)
	case clientpool.EventDisconnected:
		disconnectedMeter.Mark(1)
	}
}

// updateGauges reads the pool's load and lost events into the gauges.
func updateGauges(pool *clientpool.ClientPool) {
	count, capacity := pool.Active()
	activeCountGauge.Update(int64(count))
	activeCapGauge.Update(int64(capacity))
	inactiveCountGauge.Update(int64(pool.Inactive()))
	totalTokensGauge.Update(int64(pool.TotalTokenAmount()))
	droppedEventsGauge.Update(int64(pool.DroppedEvents()))
}

// countingService is the pool as a vflux service, counting capacity query
// answers as zero (not admitted at any amount) or non-zero.
type countingService struct {
	pool *clientpool.ClientPool
}

// Handle answers through the pool and counts "cq" answers.
func (c countingService) Handle(id enode.ID, freeID, name string, data []byte) []byte {
	resp := c.pool.Handle(id, freeID, name, data)
	if name != vflux.CapacityQueryName || len(resp) == 0 {
		return resp
	}
	var caps vflux.CapacityQueryReply
	if rlp.DecodeBytes(resp, &caps) != nil {
		return resp
	}
	for _, c := range caps {
		if c != 0 {
			capQueryNonZeroMeter.Mark(1)
			return resp
		}
	}
	capQueryZeroMeter.Mark(1)
	return resp
}

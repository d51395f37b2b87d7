package node

import (
	"github.com/ethereum/go-ethereum/metrics"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/protocol"
)

// The node's metrics, registered once in go-ethereum's default registry when
// the package loads, so an idle node already serves every one. Names follow
// Prometheus conventions (snake_case under vflux_, counts end in _total; the
// README lists them one by one); they replace SPEC 6's vflux/server/... names.
// go-ethereum's exporter serves a meter as its count and types everything as a
// gauge. The request meters belong to package protocol; TALKREQ requests are
// counted into the same meters here.
var (
	activeCountGauge   = metrics.GetOrRegisterGauge("vflux_clients_active", nil)
	inactiveCountGauge = metrics.GetOrRegisterGauge("vflux_clients_inactive", nil)
	maxCountGauge      = metrics.GetOrRegisterGauge("vflux_clients_max", nil)
	activeCapGauge     = metrics.GetOrRegisterGauge("vflux_capacity_active", nil)
	maxCapGauge        = metrics.GetOrRegisterGauge("vflux_capacity_max", nil)
	totalTokensGauge   = metrics.GetOrRegisterGauge("vflux_tokens_held", nil)
	// droppedEventsGauge is the number of pool events subscribers lost to a
	// full queue (SPEC 3.1), the pool's DroppedEvents (a count since start).
	droppedEventsGauge = metrics.GetOrRegisterGauge("vflux_events_dropped_total", nil)

	connectedMeter    = metrics.GetOrRegisterMeter("vflux_clients_connected_total", nil)
	activatedMeter    = metrics.GetOrRegisterMeter("vflux_clients_activated_total", nil)
	deactivatedMeter  = metrics.GetOrRegisterMeter("vflux_clients_deactivated_total", nil)
	disconnectedMeter = metrics.GetOrRegisterMeter("vflux_clients_disconnected_total", nil)
	exhaustedMeter    = metrics.GetOrRegisterMeter("vflux_clients_balance_exhausted_total", nil)

	// A capacity query answer is "zero" when no amount asked about buys any
	// capacity (the client would not be admitted), else "nonzero": the pool's
	// CapacityQueryCounts (counts since start), read with the gauges.
	capQueryZeroGauge    = metrics.GetOrRegisterGauge("vflux_capacity_queries_zero_total", nil)
	capQueryNonZeroGauge = metrics.GetOrRegisterGauge("vflux_capacity_queries_nonzero_total", nil)

	// Tokens added to and taken from positive balances over RPC (addBalance).
	tokensAddedMeter   = metrics.GetOrRegisterMeter("vflux_tokens_added_total", nil)
	tokensRemovedMeter = metrics.GetOrRegisterMeter("vflux_tokens_removed_total", nil)

	talkServedMeter  = metrics.GetOrRegisterMeter(protocol.MetricRequestsServed, nil)
	talkDroppedMeter = metrics.GetOrRegisterMeter(protocol.MetricRequestsDropped, nil)
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
		if ev.Reason != clientpool.ReasonTooManyFromAddress { // refused: it never connected
			disconnectedMeter.Mark(1)
		}
	case clientpool.EventBalanceExhausted:
		exhaustedMeter.Mark(1)
	}
}

// updateGauges reads the pool's load, lost events and capacity query counts
// into the gauges.
func updateGauges(pool *clientpool.ClientPool) {
	count, capacity := pool.Active()
	maxCount, maxCap := pool.Limits()
	activeCountGauge.Update(int64(count))
	activeCapGauge.Update(int64(capacity))
	maxCountGauge.Update(int64(maxCount))
	maxCapGauge.Update(int64(maxCap))
	inactiveCountGauge.Update(int64(pool.Inactive()))
	totalTokensGauge.Update(int64(pool.TotalTokenAmount()))
	droppedEventsGauge.Update(int64(pool.DroppedEvents()))
	zero, nonzero := pool.CapacityQueryCounts()
	capQueryZeroGauge.Update(int64(zero))
	capQueryNonZeroGauge.Update(int64(nonzero))
}

// countTopUp counts a balance change made over RPC into the token flow.
func countTopUp(oldBal, newBal uint64) {
	if newBal > oldBal {
		tokensAddedMeter.Mark(int64(newBal - oldBal))
	} else {
		tokensRemovedMeter.Mark(int64(oldBal - newBal))
	}
}

package protocol

import "github.com/ethereum/go-ethereum/metrics"

// Names of the request meters. The node's TALKREQ entry counts into the same
// meters by these names; they are registered once, here (package node's
// GetOrRegister finds them). go-ethereum's Prometheus exporter serves a meter
// as its count, hence the _total names.
const (
	MetricRequestsServed  = "vflux_requests_served_total"
	MetricRequestsBusy    = "vflux_requests_busy_total"
	MetricRequestsDropped = "vflux_requests_dropped_total"
)

// Request meters of the server side.
var (
	// servedMeter counts requests served (vflux batches and capacity requests).
	servedMeter = metrics.NewRegisteredMeter(MetricRequestsServed, nil)
	// busyMeter counts requests refused with Busy because they would overdraw
	// the client's buffer.
	busyMeter = metrics.NewRegisteredMeter(MetricRequestsBusy, nil)
	// droppedMeter counts vflux batches the request server did not answer
	// (stopped, limiter overload, or an undecodable batch).
	droppedMeter = metrics.NewRegisteredMeter(MetricRequestsDropped, nil)
)

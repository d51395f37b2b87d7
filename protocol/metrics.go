package protocol

import "github.com/ethereum/go-ethereum/metrics"

// Request meters of the server side, registered once (SPEC 6).
var (
	// servedMeter counts requests served (vflux batches and capacity requests).
	servedMeter = metrics.NewRegisteredMeter("vflux/server/request/served", nil)
	// busyMeter counts requests refused with Busy because they would overdraw
	// the client's buffer.
	busyMeter = metrics.NewRegisteredMeter("vflux/server/request/busy", nil)
	// droppedMeter counts vflux batches the request server did not answer
	// (stopped, limiter overload, or an undecodable batch).
	droppedMeter = metrics.NewRegisteredMeter("vflux/server/request/dropped", nil)
)

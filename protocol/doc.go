// Package protocol is the "vfx"/1 devp2p capability: how vflux clients connect
// to a serving node over RLPx, receive capacity, ask for more, send vflux
// requests and get evicted when a better-paying client arrives (SPEC 5).
//
// It owns the wire messages (protocol.go), the per-client server loop
// (handler.go, handlers.go, peer.go), request metering with Busy replies
// (metering.go), its metrics (metrics.go) and the client side used by tests, the
// CLI and the devnet (client.go). It knows nothing of how the pool decides: it
// talks to it through the Backend interface (satisfied by
// *clientpool.ClientPool) and serves vflux batches through RequestServer
// (satisfied by *vflux.Server).
//
//	client p2p.Server                          server p2p.Server
//	ClientPeers.run ──Handshake──────────────> Handler.run ── Register ──> Backend (pool)
//	Client.RequestCapacity ─CapacityRequest──>   │          ── SetCapacity
//	Client.Vflux ─────────VfluxRequest───────>   │ meter ── ServeEncoded ─> RequestServer
//	            <──CapacityUpdate / replies / Busy ┘
//
// The pool's callbacks (UpdateCapacity, Disconnect) never block: they record a
// coalesced update or close a channel, and the peer loop sends. The loop
// unregisters its client on every exit path and returns a bare p2p.DiscReason.
package protocol

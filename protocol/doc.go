// Package protocol is the "vfx"/1 devp2p capability: how vflux clients connect
// to a serving node over RLPx, receive capacity, ask for more, send vflux
// requests and get evicted when a better-paying client arrives (SPEC 5).
//
// It owns the wire messages (protocol.go), the per-client server loop
// (handler.go, handlers.go, peer.go), request metering with Busy replies
// (metering.go; its buffer is exported as Meter for the node's governed
// protocols), its metrics (metrics.go) and the client side used by tests, the
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
// Billing: a served request is charged its full cost (SPEC 5) to the flow
// control buffer and the balance. A vflux batch the request server drops or
// refuses (limiter overflow or wait bound, an empty, oversize or undecodable
// batch) gets an empty Replies and bills only CostBase; the buffer is still
// charged its admission cost, so such a flood meets Busy like any other.
//
// # Peer slots
//
// A peer is registered with the pool the moment its "vfx" loop starts, before
// the Handshake (its node ID is already authenticated by RLPx, so the pool
// knows its balances). go-ethereum refuses a newcomer before any protocol runs
// once MaxPeers peers are connected, and the node keeps one slot free by giving
// the pool one inactive slot fewer than it has (SPEC 6 item 5); that works only
// if every connected peer is in the pool. A peer still in its handshake is
// therefore ranked like any waiting client: when the pool's inactive set
// overflows, the lowest-priority waiting client is disconnected, whether it
// finished its handshake or not, and gets DiscTooManyPeers. So peers that never
// send the Handshake cannot hold the free slot (before, they held it invisibly
// for HandshakeTimeout and a paid client was refused with "too many peers"); a
// newcomer with a balance displaces them at once; one of equal priority is
// turned away, as it would be by any other waiting client. Capacity granted during the
// handshake is sent right after it.
//
// The pool's callbacks (UpdateCapacity, Disconnect) never block: they record a
// coalesced update or close a channel, and the peer loop sends. The loop
// unregisters its client on every exit path and returns a bare p2p.DiscReason.
//
// # Debugging: why was my connection dropped?
//
// The server ends a client's connection with one of these reasons (a client
// sees it as Client.DisconnectReason):
//
//   - DiscReadTimeout: no Handshake within HandshakeTimeout (5 s).
//   - DiscProtocolError: another protocol version, a message over 64 KiB, an
//     unknown code, a server->client message sent by the client, a second
//     Handshake, or a payload that does not decode.
//   - DiscUselessPeer: a server met a server (or a client a client), or the
//     client collected params.MaxBusyStrikes consecutive Busy replies because
//     it ignored the metering constants of the Handshake.
//   - DiscTooManyPeers: the pool evicted the client (a higher-priority client
//     needed its slot, also while the client was still in its handshake) or its
//     inactive allowance ran out while it waited for capacity, or the pool
//     refused it because its address (free-client ID) already holds as many
//     clients as allowed (node.Config.MaxPerIP). go-ethereum's own peer limit
//     (MaxPeers) refuses clients with the
//     same reason before the protocol starts.
//   - DiscAlreadyConnected: the pool already has a client with this node ID
//     (refused before the handshake).
//   - DiscQuitting: the node is stopping (Handler.Stop).
//   - DiscNetworkError: the connection broke.
package protocol

// Package node wires vflux onto a go-ethereum node.Node.
//
// It owns the node-level pieces that the other packages deliberately know
// nothing of: the balance database on disk (a plain LevelDB directory inside
// the node's instance directory, see SPEC 6; balancedb.go opens it with
// goleveldb directly, not through go-ethereum's ethdb/leveldb, because that
// cannot sync a write, and its batches implement clientpool.SyncedBatch so
// the pool's top-ups are fsynced), the lifecycle that starts and
// stops the client pool, the vflux request server and the "vfx" devp2p
// capability in the right order, the discv5 TALKREQ entry point, the "vflux"
// RPC namespace, the metrics (metrics.go: Prometheus-style vflux_* names, all
// registered when the package loads), the operator's log (logging.go: each
// client's story, with the reasons the pool's events give, and a status line,
// at INFO), the parsing of what people type
// (amount.go: one parser for the RPC and the command line; node addresses
// are parsed by client.ParseNodeURL); the client side of a capacity query is
// package client's, and this package's tests query through it. The RPC
// answers convert to the live view's snapshot (package topview) in one place,
// topview.go, for `vflux top` and the devnet alike.
//
// Peer slots (SPEC 6 item 5): MaxPeers is maxclients + maxinactive and the
// pool gets one inactive slot fewer, so one slot stays free for a newcomer to
// be ranked; the protocol registers every peer as it connects, before its vfx
// handshake, so no peer holds a slot the pool cannot see (protocol/doc.go,
// "Peer slots").
//
// The "vflux" RPC namespace mints tokens (addBalance) and HTTP/WebSocket have
// no authentication: Start logs a warning for each such endpoint that serves it
// (rpc_exposure.go); IPC, the default, is the safe way in.
//
// # Settings changed over RPC
//
// The pool owns the limits, the connected bias and the default prices; the
// service keeps no copy (the API reads them from the pool). The RPC setters
// (setLimits, setConnectedBias, setDefaultParams) save what they set in the
// pool's store (clientpool.ClientPool.SaveLimits, ...; synced, under the
// pool's "set:" key) before it takes effect, return an error and change
// nothing when that write fails, and log at INFO what changed (old -> new).
// setDefaultParams saves the whole set of six default prices in effect after
// the call. The rule against the config file and flags is the simple one:
// New restores every saved setting over the configured values (they win),
// and logs at INFO each one that differs from its configured value (key,
// configured, persisted); Config.ResetSettings (--vflux.resetsettings)
// deletes them at start instead, so the configured values apply from then on.
// Saved limits the current config cannot take (a capacity below its minCap)
// are ignored with a warning. The p2p peer slots stay sized by the configured
// maxclients (Start warns when they cannot hold a larger restored limit).
//
// It relies on the caller to build the go-ethereum node (flags, config files
// and logging live in cmd/vflux) and to call New before the node starts:
// go-ethereum refuses protocol, lifecycle and API registration after Start.
//
//	gethnode.Node ──RegisterProtocols──> protocol.Handler ──Backend──> clientpool.ClientPool
//	      │                                     └──RequestServer──> vflux.Server ──Service──┘
//	      ├──RegisterLifecycle──> Service (Start: TALKREQ "vfx" -> vflux.Server; Stop)
//	      └──RegisterAPIs──────> API ("vflux" namespace)
package node

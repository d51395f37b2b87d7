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
// RPC namespace and the metrics; the client side of a capacity query is
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
// It relies on the caller to build the go-ethereum node (flags, config files
// and logging live in cmd/vflux) and to call New before the node starts:
// go-ethereum refuses protocol, lifecycle and API registration after Start.
//
//	gethnode.Node ──RegisterProtocols──> protocol.Handler ──Backend──> clientpool.ClientPool
//	      │                                     └──RequestServer──> vflux.Server ──Service──┘
//	      ├──RegisterLifecycle──> Service (Start: TALKREQ "vfx" -> vflux.Server; Stop)
//	      └──RegisterAPIs──────> API ("vflux" namespace)
package node

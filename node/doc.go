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
// The devnet (devnet.go, devnet_view.go) draws that same view: one goroutine
// (watch) owns it, adds every pool event to a topview.EventLog and every
// Progress reads the in-process API (the RPC's code path) into a frame; it
// adds only what the devnet alone knows: each client's name (paid-N,
// free-N), its workload's served rate and, below the view, the clients that
// are offline with when they left or why their last dial failed.
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
//
// # One owner of client state
//
// The pool is the only owner of what it decides about a client: capacity,
// balances, prices, connection time, and the counts of capacity query answers.
// The RPC API (api.go: clientInfo, connectedClientInfo, setClientParams,
// serverInfo's connectedCount), the live view built from it (topview.go) and
// the metrics (metrics.go: vflux_capacity_queries_{zero,nonzero}_total are
// the pool's CapacityQueryCounts, read with the gauges) read the pool by node
// ID (clientpool.ClientPool.ClientInfo, ConnectedClients) and change prices
// by node ID (SetClientFactors). The registry (clients.go) keeps only what is
// the connection's own: which protocols it runs, whether the pool has decided
// on it yet, and its governed flow, whose meter runs at the capacity the pool
// last told it (flow state, which nothing reports) and which holds the
// ConnectedBalance its requests are charged to.
//
// # Governing other protocols (SPEC 11)
//
// Config.Govern names protocols registered on the stack before New (eth.New
// registers eth/69..72 and snap/1); New wraps the Run of every version of
// each (govern.go), and a name not on the stack is an error. An inbound,
// untrusted peer is one client (clients.go) however many protocols it runs:
// the first protocol to start registers it with the pool, the last to end
// unregisters it, and vfx/1's handler attaches to the same client through
// the registry (its protocol.Backend), so they share the balance and the
// capacity. Peers the node dialed and trusted peers run their protocols as if
// vflux were not there: the node's own sync is never throttled.
//
// Flow control (govern_flow.go): each governed protocol run gets a
// MsgReadWriter whose pump goroutine reads the connection into one bounded
// per-client queue (governQueueBytes; a larger single message is held alone).
// ReadMsg hands the next message on when the client is active and its cost,
// CostBase plus CostPerKB per KiB, fits the client's one buffer
// (protocol.Meter at the capacity as rate, capacity*BufferSecs deep, shared by
// all its governed protocols); outbound messages are never held and cost
// CostPerKB per KiB. Every cost is charged to the buffer and with
// RequestServed. The pump stops reading only when the queue is full:
// go-ethereum hands a peer's messages to its protocols over unbuffered
// channels from one read loop, so a message simply left unread would stall
// the peer's vfx/1 as well; with the queue, vfx/1 (capacity requests and "cq",
// which an inactive client must reach) stalls only behind a flooder's full
// queue, and then RLPx and TCP push back on that peer alone. Nothing is
// dropped or reordered: each protocol's messages leave its queue in order.
// vfx/1 keeps its own meter for its own small messages.
//
// Admission rule: the first inbound and the first outbound message of each
// governed protocol run pass unheld and unmetered. That is eth's Status
// exchange (which go-ethereum abandons after 5 s, so it must not wait for
// activation); a protocol without a handshake (snap) gets one free message.
// After it, an inactive client's messages wait until the pool activates it
// or its inactive allowance ends. The pool's Disconnect ends every protocol
// of the connection with DiscTooManyPeers (governed ReadMsg returns it and
// the connection is told). By default every inbound message costs CostBase
// plus CostPerKB per KiB; Config.GovernCosts (data: protocol, code, cost)
// replaces that for listed codes where size is the wrong measure (e.g. eth
// GetReceipts, code 0x0f); what the node sends back stays CostPerKB per KiB.
//
// go-ethereum's peer dropper (eth/dropper.go) disconnects a random inbound
// peer every 3-7 minutes, but only when the inbound slots are all taken and
// the node is not syncing, and never a peer younger than 10 minutes.
// ConfigureP2P sizes MaxPeers to MaxClients plus the inactive slots, and the
// pool keeps one of those free (Config.PoolMaxInactive): a newcomer that takes
// the last slot is ranked and the lowest waiting client leaves at once. So the
// inbound slots are full only for the moment of that decision, and the pool
// alone decides who leaves. An operator who sets MaxPeers below that (or adds
// non-client peers) may let the dropper act.
package node

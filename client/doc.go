// Package client is the client side of vflux for applications: it finds vflux
// servers, compares what they offer, connects to the best one and holds
// capacity there, failing over when it is lost.
//
// One Client is one identity (a secp256k1 key: its node ID is what a server's
// operator tops up; LoadOrCreateKey keeps it in a file) with one go-ethereum
// p2p.Server that listens on an ephemeral UDP port for discv5 and accepts no
// inbound connections:
//
//	Discover  discv5 from Config.Bootnodes: a crawl of the bootnodes and the nodes
//	          they name, plus random lookups; keeps records with the "vfx" entry
//	Query     one TALKREQ batch to a server: "cq" for the amounts, "info", "bal"
//	Survey    Config.Servers plus Discover, queried in parallel (Concurrency at a
//	          time, each within QueryTimeout), ranked by Config.Policy
//	Connect   a vfx/1 connection (protocol.ClientPeers) that asks for a capacity
//	          and reports every change on Conn.Events
//	Hold      Survey, Connect to the best, and on eviction, disconnect or a failed
//	          dial go on to the next best (re-surveying when the list runs out),
//	          each lost server avoided for a doubling backoff
//
// The default policy, ByCapacityFor(Config.Budget), prefers the most capacity
// for the tokens the caller is willing to add, then the lower price per
// capacity, the lower load and the larger minimum capacity.
//
// Asking again: a server does not tell a client that its balance grew, so a
// Conn that holds less than it wants asks again every Config.Retry and
// whenever the server changes its capacity on its own; a partial grant is
// reported as such (Event.Asked and Event.Capacity).
//
// What it does not own: the wire formats (packages vflux and protocol) and
// anything on the server side. The command line's id, query, connect and
// servers are thin layers over this package.
//
// Concurrency: Client methods are safe for concurrent use. Each Conn and
// Session has one goroutine that owns its state and delivers its events in
// order on a channel the caller must read until it is closed.
package client

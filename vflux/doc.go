// Package vflux owns the vflux request protocol: the wire format of request
// batches and replies (byte-compatible with go-ethereum's former les/vflux), the
// request types of the client pool service ("cq", "bal", "info"), the free-client
// identity of a requester, and the request server that routes batches to named
// services through a fair, DoS-resistant limiter.
//
// It knows nothing of pools or of p2p: transports (discv5 TALKREQ, the "vfx"
// RLPx capability) hand it encoded batches with the requester's node ID and IP
// address, and services answer requests by name. Callers are expected to pass
// an authenticated node ID (discv5 and RLPx both authenticate it) and the IP
// address the request came from.
//
//	transport ──ServeTalk/ServeEncoded──▶ decode ─▶ limiter ─▶ Service.Handle (one at a time) ─▶ encode
//
// # Files
//
//   - wire.go: the wire types and their helpers (Requests.Add, Replies.Get, IntOrInf).
//   - capquery.go: the capacity query's request decoder and reply encoder, written
//     by hand (no reflection) because "cq" is the request servers answer in bulk;
//     byte-compatible with rlp.DecodeBytes/EncodeToBytes (fuzzed against them).
//   - server.go: Server, its entry points and the TALKREQ reply budget.
//   - limiter.go: the blocking limiter used by the Server (one batch served at a time).
//   - scheduler.go: the deterministic scheduling core of the limiter (rules, API, rate);
//     schedtree.go and flowheap.go: its tree of queues and their heaps.
//
// # Which entry point a transport calls
//
// One Server is shared by all transports. The wait bound is chosen per entry
// point: ServeTalk (discv5 TALKREQ) waits at most params.TalkMaxWait, well inside
// discv5's ~200 ms handler budget, and cuts the replies to one packet
// (params.TalkReplyBudget); ServeEncoded and Serve (RLPx) wait at most
// ServerConfig.MaxWait and send replies whole.
//
// # Debugging: why did my request get no answer?
//
// A batch gets no answer at all (nil) when it does not decode, is empty or has
// more than params.MaxRequestsPerBatch requests, when the server is stopped, or
// when the limiter dropped it. The limiter drops a batch when it waited past its
// bound (the server is busier than its Rate, and others were due first), or
// when the queue was over its bounds (MaxQueuedCost, MaxWaiters) and the batch's
// sender was the biggest offender: the class, then address group, then node ID
// with the most queued cost (counted twice if it was dropped before and not
// served since). Address groups that were not served recently share one
// "new" class, which gets a quarter of the service while others wait; a
// newcomer's light first batch (a capacity query, server info, balance) may go
// ahead of that share for a moment after the new class served a flood batch,
// so it is not dropped for the flood's surcharge (see scheduler.go). A single
// request gets an empty reply when its service id is unknown or the service did
// not answer it. Server.Stats counts answered and dropped batches.
package vflux

// Package vflux owns the vflux request protocol: the wire format of request
// batches and replies (byte-compatible with go-ethereum's former les/vflux), the
// request types of the client pool service ("cq", "bal", "info"), the free-client
// identity of a requester, and the request server that routes batches to named
// services through a fair, DoS-resistant limiter.
//
// It knows nothing of pools or of p2p: transports (discv5 TALKREQ, the "vfx"
// RLPx capability) hand it encoded batches with the requester's node ID and IP
// address, and services answer requests by name.
package vflux

// Package topview renders the live view of a serving vflux node that
// `vflux top` redraws in place: the limits and load (saying plainly when the
// node is full and newcomers wait or are turned away), every connected client
// and the last pool events.
//
// # What it owns
//
//   - The snapshot types (Server, Client, Event, Snapshot): plain data, filled
//     by whoever collects it. `vflux top` fills them over the "vflux" RPC
//     namespace; the devnet can fill them from its in-process pool.
//   - Render, a pure function from a Snapshot to text: same input, same
//     bytes, no escape codes. Columns a collector may not have (a client's
//     Name, the Served figure under the Snapshot's ServedHeader: the
//     devnet's labels and eth download) appear only when set, so a frame
//     without them is the same as before they existed.
//   - Framed, which prepares a frame for its output: the clear-screen escape
//     before it on a terminal (redraw in place), a blank line between frames
//     elsewhere. `vflux top` and the devnet share it.
//   - ShortID, the one form clients are named by in the view and the devnet:
//     the first 8 hex digits of the node ID, a prefix of the full ID that
//     `vflux clients` and the RPC print, so the two can be matched by eye or
//     grep.
//   - SpendMeter, which derives each client's spending rate from successive
//     samples of its balances (the RPC reports balances, not rates), and
//     EventLog, the last few events.
//
// It does not import the node package (the node's devnet imports this one)
// and does no I/O.
package topview

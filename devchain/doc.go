// Package devchain runs a development Ethereum chain on a vflux node (SPEC 11
// "In the command"): go-ethereum's own eth service (eth.New, which registers
// the eth and snap devp2p protocols) driven by go-ethereum's simulated beacon,
// so a serving node has real eth/snap data for the pool to govern.
//
// It owns three things:
//   - the dev account: a key kept in the node's instance directory
//     (<datadir>/vflux/devkey) and funded in the genesis, so the same genesis is
//     rebuilt and the chain resumed on every restart;
//   - the wiring of eth.New and the simulated beacon on a go-ethereum stack.
//     Register must run before vflux's node.New so that governing finds the
//     eth and snap protocols on the stack. Unlike geth --dev, p2p is left as
//     the stack's config says (listening, discovery on);
//   - a client of go-ethereum's eth protocol for in-process p2p.Servers
//     (ClientChain, a genesis-only local chain shared by many clients, and
//     ClientPeers, one per p2p.Server), used by the devnet and the tests to
//     download headers and bodies from a dev node with go-ethereum's own
//     handshake and requests. Its response channels are unbuffered: eth's
//     message loop waits for each delivered response to be taken, so a
//     buffered answer to a request given up would stall the connection;
//   - the devnet's eth workload (Workload, a node.DevnetWorkload): the
//     devnet server runs the dev chain and every client downloads it round
//     and round, so the devnet shows what the pool's governing does to eth.
//     Package node stays free of eth (a smaller build for whoever imports
//     it): the devnet reaches eth only through that interface.
//
// It does not import go-ethereum's cmd/utils (SPEC 10): the few settings
// geth's --dev makes are written here.
package devchain

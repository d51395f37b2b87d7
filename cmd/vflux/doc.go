// Command vflux runs a go-ethereum p2p node that serves the vflux protocol, and
// talks to such nodes: capacity queries over discv5, balance top-ups over RPC,
// and a local demo network.
//
// The command owns flag mapping only: it turns flags and the --config TOML
// file into a go-ethereum node.Config and a node.Config of package node
// (flags win over the file), sets up logging, and calls into package node for
// everything else. It holds no business logic:
//
//   - the node command (config.go, run.go) builds the go-ethereum node, calls
//     node.New and runs until interrupted; dumpconfig prints the resulting
//     TOML and flagtable the flag table of the README;
//   - query (query.go) asks a server's capacity over a discv5 TALKREQ through
//     node.Query;
//   - balance get/add and clients (rpccmds.go) call the node's "vflux" RPC
//     namespace through node.DialRPC;
//   - devnet (devnet.go) starts node.RunDevnet on loopback, with --dev the
//     eth download of devchain.Workload;
//   - --dev, --dev.period and --vflux.govern (dev.go) register package
//     devchain's chain on the stack before node.New, and resolve the list of
//     governed protocols: eth,snap with the dev chain unless the flag or the
//     config file's [Vflux] Govern was given.
package main

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
//   - the client commands id, query, connect and servers (id.go, query.go,
//     connect.go, servers.go) are thin layers over package client, with a
//     client key of their own (--nodekey, default <datadir>/client.key);
//   - balance get/add and clients (rpccmds.go) call the node's "vflux" RPC
//     namespace through node.DialRPC;
//   - top (top.go) samples vflux_serverInfo and vflux_connectedClientInfo
//     every --interval, follows vflux_subscribe("events"), and draws the
//     frames with package topview (the devnet draws the same view);
//   - attach (attach.go) is go-ethereum's JavaScript console on a node's RPC,
//     with the vflux namespace from vflux.js (embedded; the same file serves
//     `geth attach --preload`);
//   - devnet (devnet.go) starts node.RunDevnet on loopback, with --dev the
//     eth download of devchain.Workload; its frames redraw in place on a
//     terminal (isTerminal, top.go);
//   - --dev, --dev.period and --vflux.govern (dev.go) register package
//     devchain's chain on the stack before node.New, and resolve the list of
//     governed protocols: eth,snap with the dev chain unless the flag or the
//     config file's [Vflux] Govern was given;
//   - version (version.go) prints what the binary was built from; logging.go
//     sets up go-ethereum's log handlers (--verbosity, --log.format,
//     --vmodule) for every command.
//
// Input the user types is checked before anything is dialled, by the
// functions the node uses too (node.ParseNodeID, node.ParseBalanceChange), so
// the command line and the RPC accept and refuse the same things in the same
// words. usage.go turns flag parse errors and flags placed after arguments
// into messages that say what to type.
package main

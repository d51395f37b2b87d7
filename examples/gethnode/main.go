// Command gethnode is a go-ethereum node built with go-ethereum's own eth
// service and vflux added to it, governing eth and snap: the example of the
// README section "Add vflux to your go-ethereum node". It serves a
// development chain (its genesis only, as no consensus client drives it) to
// eth clients, by their vflux balance and priority.
//
//	go run ./examples/gethnode -datadir /tmp/gethnode
//
// With -smoke it stops right after starting (the tests run it so).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	vfnode "github.com/vflux-net/vflux/node"
)

func main() {
	datadir := flag.String("datadir", "", "data directory (chain and vflux balances); empty: in memory")
	listen := flag.String("listen", "127.0.0.1:30303", "TCP listen address")
	smoke := flag.Bool("smoke", false, "stop right after starting")
	flag.Parse()
	if err := run(*datadir, *listen, *smoke); err != nil {
		fmt.Fprintln(os.Stderr, "gethnode:", err)
		os.Exit(1)
	}
}

func run(datadir, listen string, smoke bool) error {
	// vflux serving: 100 clients, governing eth and snap on the same node.
	vcfg := vfnode.DefaultConfig()
	vcfg.Serve = true
	vcfg.Govern = []string{"eth", "snap"}

	gcfg := &gethnode.Config{
		Name:    "gethnode",
		DataDir: datadir,
		P2P:     p2p.Config{ListenAddr: listen, NoDiscovery: true},
	}
	vfnode.ConfigureP2P(&gcfg.P2P, vcfg, false) // a server does not dial; peer slots for the pool
	stack, err := gethnode.New(gcfg)
	if err != nil {
		return err
	}
	defer stack.Close()

	// go-ethereum's eth service first: it registers eth/69..72 and snap/1.
	ecfg := ethconfig.Defaults
	ecfg.Genesis = core.DeveloperGenesisBlock(30_000_000, nil)
	ecfg.NetworkId = ecfg.Genesis.Config.ChainID.Uint64()
	ecfg.SyncMode = ethconfig.FullSync // a snap-syncing handler turns non-snap peers away
	if _, err := eth.New(stack, &ecfg); err != nil {
		return err
	}
	// Then vflux, which wraps the protocols it governs (before Start).
	svc, err := vfnode.New(stack, vcfg)
	if err != nil {
		return err
	}
	if err := stack.Start(); err != nil {
		return err
	}
	maxCount, maxCap := svc.Pool().Limits()
	fmt.Println("serving eth and snap, governed by vflux:", maxCount, "clients,", maxCap, "capacity")
	fmt.Println(stack.Server().NodeInfo().ENR)
	if smoke {
		return nil
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	return nil
}

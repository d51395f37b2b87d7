package main

import (
	"crypto/ecdsa"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/client"
)

// clientKeyFlag is the client commands' --nodekey. Their default is a key of
// their own in --datadir, never the serving node's (a client with the node's
// identity would dial itself and share its balance entry).
var clientKeyFlag = &cli.StringFlag{
	Name:     "nodekey",
	Usage:    "Client key file, created if missing (default: <datadir>/" + client.DefaultKeyName + ", not the serving node's key)",
	Category: catClient,
}

// identityFlags choose the client's key.
var identityFlags = []cli.Flag{clientKeyFlag, dataDirFlag}

var idCommand = &cli.Command{
	Name:  "id",
	Usage: "Print the client's node ID (what an operator tops up) and public key",
	Description: `The client commands (id, query, connect, servers) share one identity: the key in
--nodekey, by default <datadir>/client.key, created on first use. Give the node ID to
the operator of a server ("vflux balance add <node ID> <tokens>" on their side).`,
	Flags:  identityFlags,
	Action: runID,
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) { app.Commands = append(app.Commands, idCommand) })
}

// clientKey loads or creates the client key chosen by --nodekey/--datadir.
func clientKey(ctx *cli.Context) (key *ecdsa.PrivateKey, path string, created bool, err error) {
	path = ctx.String(clientKeyFlag.Name)
	if path == "" {
		dir := expandHome(ctx.String(dataDirFlag.Name))
		if dir == "" {
			return nil, "", false, fmt.Errorf("no --nodekey and no --datadir for the client key")
		}
		path = filepath.Join(dir, client.DefaultKeyName)
	}
	key, created, err = client.LoadOrCreateKey(expandHome(path))
	return key, path, created, err
}

func runID(ctx *cli.Context) error {
	if ctx.NArg() != 0 {
		return fmt.Errorf("id takes no arguments (got %d)", ctx.NArg())
	}
	key, path, created, err := clientKey(ctx)
	if err != nil {
		return err
	}
	w := ctx.App.Writer
	fmt.Fprintf(w, "node ID     %s\n", enode.PubkeyToIDV4(&key.PublicKey))
	fmt.Fprintf(w, "public key  %s (uncompressed secp256k1, 65 bytes hex)\n", hex.EncodeToString(crypto.FromECDSAPub(&key.PublicKey)))
	note := ""
	if created {
		note = " (created now)"
	}
	fmt.Fprintf(w, "key file    %s%s\n", path, note)
	return nil
}

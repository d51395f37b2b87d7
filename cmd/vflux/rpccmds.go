package main

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/urfave/cli/v2"
	vfnode "github.com/vflux-net/vflux/node"
)

// rpcFlags locate a running node: --rpc, else the IPC endpoint of --datadir
// and --ipcpath.
var rpcFlags = []cli.Flag{rpcURLFlag, dataDirFlag, ipcPathFlag}

var balanceCommand = &cli.Command{
	Name:  "balance",
	Usage: "Read or top up a client's token balance on a running node (over RPC)",
	Subcommands: []*cli.Command{
		{
			Name:      "get",
			Usage:     "Show a client's balances, connection and capacity",
			ArgsUsage: "<node ID|enode URL|ENR>",
			Flags:     rpcFlags,
			Action:    runBalanceGet,
		},
		{
			Name:      "add",
			Usage:     "Add tokens to a client's positive balance (negative to take them away)",
			ArgsUsage: "<node ID|enode URL|ENR> <amount>",
			Flags:     append([]cli.Flag{clampFlag}, rpcFlags...),
			Action:    runBalanceAdd,
		},
	},
}

var clampFlag = &cli.BoolFlag{
	Name: "clamp", Usage: "Let a negative amount larger than the balance empty it (else that is an error)", Category: catClient,
}

var clientsCommand = &cli.Command{
	Name:   "clients",
	Usage:  "Show the server's load, its connected clients and the clients with a positive balance (over RPC)",
	Flags:  append([]cli.Flag{&cli.IntFlag{Name: "max", Usage: "Most clients to list per table", Value: 100, Category: catClient}}, rpcFlags...),
	Action: runClients,
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) {
		app.Commands = append(app.Commands, balanceCommand, clientsCommand)
	})
}

// rpcEndpoint is --rpc, or the IPC path the node with --datadir/--ipcpath uses.
func rpcEndpoint(ctx *cli.Context) (string, error) {
	if url := ctx.String(rpcURLFlag.Name); url != "" {
		return url, nil
	}
	cfg := gethnode.Config{DataDir: expandHome(ctx.String(dataDirFlag.Name)), IPCPath: ctx.String(ipcPathFlag.Name)}
	path := cfg.IPCEndpoint()
	if path == "" {
		return "", fmt.Errorf("no RPC endpoint: give --rpc or --datadir")
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no node running at %s (IPC endpoint not found; is the node started with this --datadir?)", path)
	}
	return path, nil
}

func dialNode(ctx *cli.Context) (*vfnode.RPCClient, context.Context, context.CancelFunc, error) {
	quietLogs(ctx)
	endpoint, err := rpcEndpoint(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx.Context, 30*time.Second)
	c, err := vfnode.DialRPC(cctx, endpoint)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return c, cctx, cancel, nil
}

func runBalanceGet(ctx *cli.Context) error {
	if err := checkArgs(ctx, 1, "one argument, the client's node ID, enode URL or ENR"); err != nil {
		return err
	}
	if _, err := vfnode.ParseNodeID(ctx.Args().First()); err != nil {
		return err
	}
	c, cctx, cancel, err := dialNode(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	infos, err := c.ClientInfo(cctx, ctx.Args().First())
	if err != nil {
		return fmt.Errorf("vflux_clientInfo: %w", err)
	}
	printClients(ctx.App.Writer, infos)
	return nil
}

func runBalanceAdd(ctx *cli.Context) error {
	if err := checkArgs(ctx, 2, "two arguments, the client's node ID (or enode URL, ENR) and the amount"); err != nil {
		return err
	}
	// The node parses the amount with the same function; parsing it here
	// too reports a typo without needing a running node.
	if _, err := vfnode.ParseNodeID(ctx.Args().First()); err != nil {
		return err
	}
	amount, err := vfnode.ParseBalanceChange(ctx.Args().Get(1))
	if err != nil {
		return err
	}
	c, cctx, cancel, err := dialNode(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	add := c.AddBalance
	if ctx.Bool(clampFlag.Name) {
		add = c.AddBalanceClamped
	}
	oldBal, newBal, err := add(cctx, ctx.Args().First(), big.NewInt(amount))
	if err != nil {
		return fmt.Errorf("vflux_addBalance: %w", err)
	}
	fmt.Fprintf(ctx.App.Writer, "balance %d -> %d\n", oldBal, newBal)
	return nil
}

func runClients(ctx *cli.Context) error {
	if err := checkArgs(ctx, 0, "no arguments"); err != nil {
		return err
	}
	c, cctx, cancel, err := dialNode(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	info, err := c.ServerInfo(cctx)
	if err != nil {
		return fmt.Errorf("vflux_serverInfo: %w", err)
	}
	max := ctx.Int("max")
	connected, err := c.ConnectedClientInfo(cctx, max)
	if err != nil {
		return fmt.Errorf("vflux_connectedClientInfo: %w", err)
	}
	paid, err := c.PriorityClientInfo(cctx, "", "", max)
	if err != nil {
		return fmt.Errorf("vflux_priorityClientInfo: %w", err)
	}
	w := ctx.App.Writer
	fmt.Fprintf(w, "active %d of %d clients, capacity %d of %d, %d waiting, %d tokens held\n\n",
		info.ActiveCount, info.MaxCount, info.ActiveCap, info.MaxCap, info.InactiveCount, info.TotalTokens)
	fmt.Fprintf(w, "connected clients (%d):\n", len(connected))
	printClients(w, connected)
	fmt.Fprintf(w, "\nclients with a positive balance (%d):\n", len(paid))
	printClients(w, paid)
	return nil
}

func printClients(w io.Writer, infos map[string]vfnode.ClientInfo) {
	ids := make([]string, 0, len(infos))
	for id := range infos {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "node ID\tconnected\tcapacity\tbalance\tnegative balance\tconnected for")
	for _, id := range ids {
		ci := infos[id]
		since := "-"
		if ci.Connected {
			since = time.Duration(ci.ConnectionTime * float64(time.Second)).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\t%s\n", id, ci.Connected, ci.Capacity, ci.PosBalance, ci.NegBalance, since)
	}
	tw.Flush()
	if len(ids) == 0 {
		fmt.Fprintln(w, strings.Repeat(" ", 2)+"(none)")
	}
}

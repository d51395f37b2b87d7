package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/devchain"
	vfnode "github.com/vflux-net/vflux/node"
)

var (
	devClientsFlag  = &cli.IntFlag{Name: "clients", Usage: "Number of clients", Value: vfnode.DefaultDevnetConfig().Clients, Category: catClient}
	devPaidFlag     = &cli.IntFlag{Name: "paid", Usage: "How many clients get a token balance at start", Value: vfnode.DefaultDevnetConfig().Paid, Category: catClient}
	devTokensFlag   = &cli.StringFlag{Name: "tokens", Usage: "Tokens each paid client gets", Value: vfnode.DefaultDevnetConfig().PaidTokens.String(), Category: catClient}
	devSlotsFlag    = &cli.Uint64Flag{Name: "maxclients", Usage: "Active client slots of the server", Value: vfnode.DefaultDevnetConfig().Server.MaxClients, Category: catClient}
	devDurationFlag = &cli.DurationFlag{Name: "duration", Usage: "Stop after this long (0 = until interrupted)", Category: catClient}
	devIPCFlag      = &cli.StringFlag{Name: "ipcpath", Usage: "IPC endpoint of the devnet server (empty = none)", Value: vfnode.DefaultDevnetConfig().IPCPath, Category: catClient}
	devnetDevFlag   = &cli.BoolFlag{Name: "dev", Usage: "The server runs a development chain; clients download its headers and bodies over eth, governed by the pool", Category: catClient}
	devnetGovern    = &cli.StringFlag{Name: "vflux.govern", Usage: "Protocols the server's pool governs (\"none\" = only vfx/1)", Value: "eth,snap", Category: catClient}
)

var devnetCommand = &cli.Command{
	Name:  "devnet",
	Usage: "Run one server and N clients (some paid) on loopback and show the pool working live (the view of vflux top)",
	Flags: []cli.Flag{devClientsFlag, devPaidFlag, devTokensFlag, devSlotsFlag, devDurationFlag, devIPCFlag, devnetDevFlag, devnetGovern},
	Action: func(ctx *cli.Context) error {
		quietLogs(ctx)
		cfg := vfnode.DefaultDevnetConfig()
		cfg.Clients = ctx.Int(devClientsFlag.Name)
		cfg.Paid = ctx.Int(devPaidFlag.Name)
		cfg.Server.MaxClients = ctx.Uint64(devSlotsFlag.Name)
		cfg.Server.MaxInactive = (cfg.Server.MaxClients + 1) / 2
		cfg.Duration = ctx.Duration(devDurationFlag.Name)
		cfg.IPCPath = ctx.String(devIPCFlag.Name)
		cfg.Redraw = isTerminal(ctx.App.Writer)
		tokens, err := vfnode.ParseTokenAmount(ctx.String(devTokensFlag.Name))
		if err != nil {
			return err
		}
		cfg.PaidTokens = tokens
		if ctx.Bool(devnetDevFlag.Name) {
			if cfg.Server.Govern, err = parseGovern(ctx.String(devnetGovern.Name)); err != nil {
				return err
			}
			w := devchain.NewWorkload(devchain.DefaultConfig())
			defer w.Close()
			cfg.Workload = w
		}
		sctx, stop := signal.NotifyContext(ctx.Context, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return vfnode.RunDevnet(sctx, cfg, ctx.App.Writer)
	},
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) { app.Commands = append(app.Commands, devnetCommand) })
}

// quietLogs lowers the default log level of client commands to warnings, so
// their output is not buried in the p2p stack's info lines.
func quietLogs(ctx *cli.Context) {
	if !ctx.IsSet(verbosityFlag.Name) {
		setLogVerbosity(ctx, os.Stderr, 2)
	}
}

package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/console"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/urfave/cli/v2"
)

// vfluxJS is the console module of the "vflux" namespace. The same file is
// what `geth attach --preload cmd/vflux/vflux.js` loads.
//
//go:embed vflux.js
var vfluxJS []byte

var (
	execFlag    = &cli.StringFlag{Name: "exec", Usage: "Execute one JavaScript statement, print its result and exit", Category: catClient}
	preloadFlag = &cli.StringFlag{Name: "preload", Usage: "Comma separated list of JavaScript files to load into the console (after the vflux module)", Category: catClient}
)

var attachCommand = &cli.Command{
	Name:  "attach",
	Usage: "Start a JavaScript console (geth's) on a running node, with the vflux namespace",
	ArgsUsage: "[ENDPOINT]\n\nENDPOINT is an IPC socket path, an http(s):// or ws(s):// URL, or a data directory " +
		"(its IPC endpoint); default: the IPC endpoint of --datadir",
	Flags:  []cli.Flag{execFlag, preloadFlag, dataDirFlag, ipcPathFlag},
	Action: runAttach,
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) {
		app.Commands = append(app.Commands, attachCommand)
	})
}

// attachEndpoint resolves attach's ENDPOINT argument: a URL as it is, a
// directory as the IPC endpoint inside it, anything else as an IPC path; no
// argument means the IPC endpoint of --datadir. dataDir is the node's data
// directory when the endpoint is known to be in one ("" otherwise).
func attachEndpoint(ctx *cli.Context) (endpoint, dataDir string, err error) {
	arg := ctx.Args().First()
	for _, scheme := range []string{"http://", "https://", "ws://", "wss://"} {
		if strings.HasPrefix(arg, scheme) {
			return arg, "", nil
		}
	}
	dir := expandHome(ctx.String(dataDirFlag.Name))
	if arg != "" {
		st, err := os.Stat(arg)
		switch {
		case err != nil:
			return "", "", fmt.Errorf("no node at %s: %v (give an IPC path, an http(s):// or ws(s):// URL, or a data directory)", arg, err)
		case !st.IsDir():
			return arg, "", nil
		}
		dir = arg
	}
	cfg := gethnode.Config{DataDir: dir, IPCPath: ctx.String(ipcPathFlag.Name)}
	path := cfg.IPCEndpoint()
	if _, err := os.Stat(path); err != nil {
		return "", "", fmt.Errorf("no node running at %s (IPC endpoint not found; is the node started with --datadir %s?)", path, dir)
	}
	return path, dir, nil
}

func runAttach(ctx *cli.Context) error {
	if err := flagsAfterArgs(ctx); err != nil {
		return err
	}
	if ctx.NArg() > 1 {
		return fmt.Errorf("attach takes at most one argument, the endpoint (see 'vflux attach --help')")
	}
	quietLogs(ctx)
	endpoint, dataDir, err := attachEndpoint(ctx)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx.Context, 30*time.Second)
	client, err := rpc.DialContext(dctx, endpoint)
	cancel()
	if err != nil {
		return fmt.Errorf("attach to %s: %w", endpoint, err)
	}
	defer client.Close()

	// The console loads preloads from files: the embedded module goes
	// through a temporary one, first, so the user's files can use it.
	tmp, err := os.MkdirTemp("", "vflux-attach")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	module := filepath.Join(tmp, "vflux.js")
	if err := os.WriteFile(module, vfluxJS, 0o600); err != nil {
		return err
	}
	preload := []string{module}
	for _, f := range splitList(ctx.String(preloadFlag.Name)) {
		abs, err := filepath.Abs(f)
		if err != nil {
			return err
		}
		preload = append(preload, abs)
	}
	// History goes to the node's data directory (geth's console keeps it
	// there too), or nowhere (the temporary directory) for a URL or a bare
	// IPC path: attach never creates a directory.
	histDir := dataDir
	if histDir == "" {
		histDir = tmp
	}
	con, err := console.New(console.Config{
		DataDir: histDir,
		DocRoot: ".",
		Client:  client,
		Printer: ctx.App.Writer,
		Preload: preload,
	})
	if err != nil {
		return fmt.Errorf("start the console: %w", err)
	}
	defer con.Stop(false)
	if ctx.IsSet(execFlag.Name) {
		con.Evaluate(ctx.String(execFlag.Name))
		return nil
	}
	fmt.Fprintf(ctx.App.Writer, "vflux console on %s: the vflux namespace is loaded (try vflux.serverInfo())\n", endpoint)
	con.Welcome()
	con.Interactive()
	return nil
}

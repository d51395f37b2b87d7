package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/protocol"
)

// Exit codes of vflux connect (0: stopped by Ctrl-C or SIGTERM).
const (
	exitUnreachable = 2 // the server could not be reached or refused the connection
	exitEvicted     = 3 // the server evicted the client (another client out-ranked it)
	exitLost        = 4 // the connection ended for another reason (server shut down, network)
)

var (
	connectCapacityFlag = &cli.Uint64Flag{
		Name: "capacity", Usage: "Capacity to ask for once active (0 = what the server gives; more than mincap needs a balance)", Category: catClient,
	}
	connectRetryFlag = &cli.DurationFlag{
		Name: "retry", Usage: "While holding less than --capacity, ask again this often (a top-up is not announced to the client)", Value: client.DefaultRetry, Category: catClient,
	}
	connectTimeoutFlag = &cli.DurationFlag{
		Name: "timeout", Usage: "How long to wait for the connection and handshake", Value: client.DefaultDialTimeout, Category: catClient,
	}
)

// exitError carries an exit code to main.
type exitError struct {
	err  error
	code int
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) ExitCode() int { return e.code }
func (e *exitError) Unwrap() error { return e.err }

var connectCommand = &cli.Command{
	Name:      "connect",
	Usage:     "Connect to a vflux server over vfx/1, hold capacity and report every change until Ctrl-C",
	ArgsUsage: "<enr|enode URL>",
	Description: `Dials the server with the client key (see 'vflux id'), prints the capacity granted and
every change after it (activated, capacity changes, busy, eviction with its reason).
With --capacity N it asks for N once active, again whenever the server changes the
capacity on its own, and every --retry while it holds less: after an operator tops
up this node ID, the next request gets more. Flags go before the address.

Exit codes: 0 stopped by Ctrl-C (SIGINT) or SIGTERM; 1 bad flags or arguments;
2 server unreachable or connection refused; 3 evicted by the server (another
client out-ranked this one); 4 connection lost for another reason.`,
	Flags:  append([]cli.Flag{connectCapacityFlag, connectRetryFlag, connectTimeoutFlag}, identityFlags...),
	Action: runConnect,
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) { app.Commands = append(app.Commands, connectCommand) })
}

// parseDialNode parses an ENR or enode URL that must have a TCP endpoint.
func parseDialNode(s string) (*enode.Node, error) {
	n, err := enode.Parse(enode.ValidSchemes, s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", client.ErrBadNode, err)
	}
	if n.IP() == nil || n.TCP() == 0 {
		return nil, fmt.Errorf("%w: %s has no IP and TCP port to connect to", client.ErrBadNode, n.ID().TerminalString())
	}
	return n, nil
}

func runConnect(ctx *cli.Context) error {
	quietLogs(ctx)
	if ctx.NArg() != 1 {
		return fmt.Errorf("connect takes one argument, the server's ENR or enode URL, after the flags (got %d)", ctx.NArg())
	}
	server, err := parseDialNode(ctx.Args().First())
	if err != nil {
		return err
	}
	key, _, _, err := clientKey(ctx)
	if err != nil {
		return err
	}
	sctx, stop := signal.NotifyContext(ctx.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := client.New(client.Config{
		PrivateKey:  key,
		ListenIP:    client.ListenIPFor(server),
		DialTimeout: ctx.Duration(connectTimeoutFlag.Name),
		Retry:       ctx.Duration(connectRetryFlag.Name),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	w := ctx.App.Writer
	fmt.Fprintf(w, "client node ID %s\n", c.Self().ID())
	fmt.Fprintf(w, "server node ID %s\n", server.ID())
	want := ctx.Uint64(connectCapacityFlag.Name)
	conn, err := c.Connect(sctx, server, want)
	if err != nil {
		if sctx.Err() != nil && ctx.Context.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil // Ctrl-C while dialling
		}
		return &exitError{fmt.Errorf("server unreachable or refused the connection: %w", err), exitUnreachable}
	}
	signalled, stopped := sctx.Done(), false
	for {
		select {
		case ev, ok := <-conn.Events():
			if !ok {
				return nil
			}
			printConnEvent(w, ev)
			if ev.Kind != client.Disconnected {
				continue
			}
			switch {
			case stopped:
				return nil
			case ev.Evicted:
				return &exitError{fmt.Errorf("evicted: %v", ev.Err), exitEvicted}
			default:
				return &exitError{fmt.Errorf("connection lost: %v", ev.Err), exitLost}
			}
		case <-signalled:
			signalled, stopped = nil, true
			conn.Close() // Events ends with Disconnected
		}
	}
}

// printConnEvent prints one line per connection event.
func printConnEvent(w io.Writer, ev client.Event) {
	ts := ev.Time.Format("15:04:05")
	switch ev.Kind {
	case client.Connected:
		state := fmt.Sprintf("capacity %d", ev.Capacity)
		if ev.Capacity == 0 {
			state = "inactive (capacity 0): waiting to be activated"
		}
		fmt.Fprintf(w, "%s connected, %s (server mincap %d)\n", ts, state, ev.MinCap)
	case client.CapacityChanged:
		switch {
		case ev.Capacity == 0:
			fmt.Fprintf(w, "%s capacity 0: deactivated, waiting (out-ranked by other clients)\n", ts)
		case ev.Requested:
			fmt.Fprintf(w, "%s capacity %d (as requested)\n", ts, ev.Capacity)
		default:
			fmt.Fprintf(w, "%s capacity %d\n", ts, ev.Capacity)
		}
	case client.Granted:
		switch {
		case ev.Code != protocol.CapOK:
			fmt.Fprintf(w, "%s asked %d, refused: %s (code %d), holding %d\n", ts, ev.Asked, ev.Msg, ev.Code, ev.Capacity)
		case ev.Capacity < ev.Asked:
			fmt.Fprintf(w, "%s asked %d, granted %d (partial)\n", ts, ev.Asked, ev.Capacity)
		default:
			fmt.Fprintf(w, "%s asked %d, granted %d\n", ts, ev.Asked, ev.Capacity)
		}
	case client.Busy:
		fmt.Fprintf(w, "%s asked %d: server busy, asking again in %v\n", ts, ev.Asked, ev.Wait)
	case client.Disconnected:
		switch {
		case ev.Evicted:
			fmt.Fprintf(w, "%s evicted by the server: %v (another client out-ranked this one)\n", ts, ev.Err)
		case errors.Is(ev.Err, p2p.DiscRequested):
			fmt.Fprintf(w, "%s disconnected\n", ts)
		default:
			fmt.Fprintf(w, "%s disconnected: %v\n", ts, ev.Err)
		}
	}
}

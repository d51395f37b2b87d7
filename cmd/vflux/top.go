package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
	vfnode "github.com/vflux-net/vflux/node"
	"github.com/vflux-net/vflux/topview"
)

var (
	topIntervalFlag = &cli.DurationFlag{Name: "interval", Usage: "Time between frames (with --once: between the two samples the spend rates come from; 0 = one sample, no rates)", Value: time.Second, Category: catClient}
	topOnceFlag     = &cli.BoolFlag{Name: "once", Usage: "Print one frame and exit (for scripts)", Category: catClient}
)

var topCommand = &cli.Command{
	Name:  "top",
	Usage: "Watch a running node live: limits, load, connected clients, spend rates and the last events (over RPC)",
	Description: `Redraws in place every --interval when stdout is a terminal; otherwise prints
frames separated by a blank line. Events need an IPC or ws:// endpoint.`,
	Flags:  append([]cli.Flag{topIntervalFlag, topOnceFlag}, rpcFlags...),
	Action: runTop,
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) { app.Commands = append(app.Commands, topCommand) })
}

const (
	// topMaxClients is the most clients vflux_connectedClientInfo lists in
	// one call.
	topMaxClients = 1000
	// topCallTimeout bounds each RPC call of a frame.
	topCallTimeout = 10 * time.Second
)

func runTop(ctx *cli.Context) error {
	interval, once := ctx.Duration(topIntervalFlag.Name), ctx.Bool(topOnceFlag.Name)
	if interval < 0 || (interval == 0 && !once) {
		return fmt.Errorf("--interval %v: give a positive duration such as 1s (0 only with --once)", interval)
	}
	quietLogs(ctx)
	endpoint, err := rpcEndpoint(ctx)
	if err != nil {
		return err
	}
	sctx, stop := signal.NotifyContext(ctx.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	dctx, cancel := context.WithTimeout(sctx, topCallTimeout)
	raw, err := rpc.DialContext(dctx, endpoint)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	defer raw.Close()

	// The events arrive as raw JSON so that fields the client's Event type
	// does not know yet (a reason) still reach the view.
	events := make(chan json.RawMessage, 64)
	w := &topWatch{c: vfnode.NewRPCClient(raw), source: endpoint, incoming: events}
	sub, err := raw.Subscribe(sctx, "vflux", events, "events")
	switch {
	case errors.Is(err, rpc.ErrNotificationsUnsupported):
		w.eventsNote = "no events over HTTP: use the IPC path or a ws:// endpoint"
	case err != nil:
		w.eventsNote = fmt.Sprintf("no events: %v", err)
	default:
		defer sub.Unsubscribe()
		w.subErr = sub.Err()
	}

	out := ctx.App.Writer
	tty := isTerminal(out)
	if once {
		return w.once(sctx, out, interval)
	}
	return w.live(sctx, out, tty, interval)
}

// topWatch collects snapshots over RPC and the events between them; one
// goroutine owns it.
type topWatch struct {
	c          *vfnode.RPCClient
	source     string
	spend      topview.SpendMeter
	events     topview.EventLog
	eventsNote string
	// incoming and subErr are the event subscription's channels; subErr is
	// nil without a subscription and once it has ended.
	incoming <-chan json.RawMessage
	subErr   <-chan error
}

// once samples, waits interval (collecting events), and prints one frame
// from a second sample, so the spend rates are known.
func (w *topWatch) once(ctx context.Context, out io.Writer, interval time.Duration) error {
	if interval > 0 {
		if _, err := w.snapshot(ctx); err != nil {
			return err
		}
		timer := time.NewTimer(interval)
		defer timer.Stop()
		if !w.collect(ctx, timer.C) {
			return nil
		}
	}
	s, err := w.snapshot(ctx)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, topview.Render(s))
	return err
}

// live prints a frame at once and then every interval until ctx ends: in
// place on a terminal, else as blocks separated by a blank line.
func (w *topWatch) live(ctx context.Context, out io.Writer, tty bool, interval time.Duration) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for first := true; ; first = false {
		s, err := w.snapshot(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if _, err := io.WriteString(out, topview.Framed(topview.Render(s), tty, first)); err != nil {
			return err
		}
		if !w.collect(ctx, ticker.C) {
			return nil
		}
	}
}

// collect adds the events that arrive until tick fires (true) or ctx ends
// (false).
func (w *topWatch) collect(ctx context.Context, tick <-chan time.Time) bool {
	for {
		select {
		case msg := <-w.incoming:
			w.addEvent(msg)
		case err := <-w.subErr:
			w.subscriptionEnded(err)
			w.subErr = nil
		case <-tick:
			return true
		case <-ctx.Done():
			return false
		}
	}
}

// snapshot reads the server's load and its connected clients.
func (w *topWatch) snapshot(ctx context.Context) (topview.Snapshot, error) {
	cctx, cancel := context.WithTimeout(ctx, topCallTimeout)
	defer cancel()
	info, err := w.c.ServerInfo(cctx)
	if err != nil {
		return topview.Snapshot{}, fmt.Errorf("vflux_serverInfo: %w", err)
	}
	infos, err := w.c.ConnectedClientInfo(cctx, topMaxClients)
	if err != nil {
		return topview.Snapshot{}, fmt.Errorf("vflux_connectedClientInfo: %w", err)
	}
	clients := vfnode.TopClients(infos)
	w.spend.Update(clients)
	return topview.Snapshot{
		Source:     w.source,
		Time:       time.Now(),
		Server:     info.TopServer(),
		Clients:    clients,
		Events:     w.events.Events(),
		EventsNote: w.eventsNote,
	}, nil
}

// topEvent is a pool event as vflux_subscribe("events") sends it. Time is
// either RFC 3339 text or, from older nodes, a count on the node's monotonic
// clock that means nothing here; the arrival time stands in for it then.
type topEvent struct {
	Type     string          `json:"type"`
	ID       string          `json:"id"`
	Capacity uint64          `json:"capacity"`
	Time     json.RawMessage `json:"time"`
	Reason   string          `json:"reason"`
	Balance  *[2]uint64      `json:"balance"`
}

func (w *topWatch) addEvent(msg json.RawMessage) {
	var ev topEvent
	if err := json.Unmarshal(msg, &ev); err != nil {
		w.events.Add(topview.Event{Time: time.Now(), Type: "undecodable", Reason: err.Error()})
		return
	}
	at := time.Now()
	var text string
	if json.Unmarshal(ev.Time, &text) == nil {
		if t, err := time.Parse(time.RFC3339Nano, text); err == nil {
			at = t.Local()
		}
	}
	w.events.Add(topview.Event{Time: at, Type: ev.Type, ID: ev.ID, Capacity: ev.Capacity, Reason: ev.Reason, Balance: ev.Balance})
}

// isTerminal reports whether out is a terminal, where live views redraw in
// place.
func isTerminal(out io.Writer) bool {
	f, ok := out.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func (w *topWatch) subscriptionEnded(err error) {
	if err == nil {
		err = errors.New("closed by the node")
	}
	w.eventsNote = fmt.Sprintf("event subscription ended: %v", err)
}

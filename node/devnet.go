package node

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/protocol"
	"github.com/vflux-net/vflux/topview"
	"github.com/vflux-net/vflux/vflux"
)

// DevnetConfig configures a local demo network: one server and Clients
// clients on loopback in one process.
type DevnetConfig struct {
	Clients    int           // clients in total
	Paid       int           // how many of them get PaidTokens at start
	PaidTokens *big.Int      // balance given to each paid client
	PaidCap    uint64        // capacity paid clients ask for (0 = 2*mincap)
	Server     Config        // the server's vflux config (Serve is implied)
	Duration   time.Duration // 0 = until ctx ends
	Progress   time.Duration // time between frames of the live view
	Redial     time.Duration // how long a disconnected client waits before dialing again
	IPCPath    string        // IPC endpoint of the server ("" = none)
	// Redraw draws every frame in place (the output is a terminal); else
	// frames follow each other, separated by a blank line.
	Redraw bool
	// Workload, if set, adds traffic over other protocols of the server's
	// stack (package devchain's eth downloads); Server.Govern names the
	// protocols the pool governs.
	Workload DevnetWorkload
}

// DevnetWorkload is traffic of the devnet's clients over protocols other
// than vfx/1 (this package does not import them: see package devchain).
type DevnetWorkload interface {
	// Name heads the live view's column of served KiB/s, e.g. "eth".
	Name() string
	// Setup registers the server side on the devnet server's stack; it runs
	// before New, so that the pool can govern what it registers.
	Setup(stack *gethnode.Node) error
	// Client returns the protocols of one client connection and the function
	// that drives them: run requests from server until ctx ends or the
	// connection does, adding the payload bytes it is served to served.
	Client() (protocols []p2p.Protocol, run func(ctx context.Context, server enode.ID, served *atomic.Uint64))
}

// DefaultDevnetConfig is a small, lively network: 8 clients (2 paid) for 4
// slots, with a short bias and allowance so turns change every few seconds,
// serving RPC on DevnetIPCPath.
func DefaultDevnetConfig() DevnetConfig {
	srv := DefaultConfig()
	srv.MaxClients = 4
	srv.MaxInactive = 2
	srv.ConnectedBias = 5 * time.Second
	srv.InactiveAllowance = 15 * time.Second
	return DevnetConfig{
		Clients:    8,
		Paid:       2,
		PaidTokens: big.NewInt(1e8),
		Server:     srv,
		Progress:   time.Second,
		Redial:     2 * time.Second,
		IPCPath:    DevnetIPCPath(),
	}
}

// DevnetIPCPath is the devnet server's default IPC endpoint: a file in the
// temporary directory named after this process, so two devnets on one machine
// do not take over each other's endpoint.
func DevnetIPCPath() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("vflux-devnet-%d.ipc", os.Getpid()))
}

func (c DevnetConfig) validate() error {
	switch {
	case c.Clients < 1 || c.Clients > 200:
		return fmt.Errorf("%w: devnet clients must be 1 to 200, got %d", ErrInvalidConfig, c.Clients)
	case c.Paid < 0 || c.Paid > c.Clients:
		return fmt.Errorf("%w: paid clients must be 0 to %d, got %d", ErrInvalidConfig, c.Clients, c.Paid)
	case c.PaidTokens == nil || c.PaidTokens.Sign() < 0 || !c.PaidTokens.IsInt64():
		return fmt.Errorf("%w: paid tokens must be 0 to 2^63-1", ErrInvalidConfig)
	case c.Progress <= 0 || c.Redial <= 0:
		return fmt.Errorf("%w: devnet intervals must be positive", ErrInvalidConfig)
	case c.Duration < 0:
		return fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	return c.Server.Validate()
}

// devClient is one simulated client. It gets a fresh p2p.Server for every
// connection: go-ethereum's dialer will not redial a node within 35 s of the
// last attempt, which would freeze the demo.
type devClient struct {
	name string // "paid-1", "free-3": the NAME the live view shows
	paid bool
	key  *ecdsa.PrivateKey
	id   enode.ID

	served atomic.Uint64 // workload bytes served, over all connections
	// dialFailed is its last dial's failure while it is not connected (nil
	// once it connects); its runClient goroutine sets it.
	dialFailed atomic.Pointer[dialFailure]

	// The rest belongs to the goroutine that draws the view (watch).
	// lastServed and lastFrame are the counter at the previous frame and its
	// time.
	lastServed uint64
	lastFrame  time.Time
	// left is its last disconnected event: when and why it left.
	left topview.Event
}

// dialFailure is when and why a client's dial failed: the server's p2p
// layer turns dials away once MaxClients plus the waiting slots are
// connected, before the pool sees them; or the pool took the client in and
// let it go at once (its waiting room was full).
type dialFailure struct {
	started, at time.Time
	err         error
}

// Devnet is a running demo network.
type Devnet struct {
	cfg     DevnetConfig
	out     io.Writer
	stack   *gethnode.Node
	svc     *Service
	clients []*devClient
	byID    map[string]*devClient // by hex node ID, as the API keys clients
	start   time.Time

	// The live view's state, owned by watch.
	preamble   string // what the devnet is and how to reach it: above the first frame, or every one when redrawn
	frames     int
	spend      topview.SpendMeter
	events     topview.EventLog
	eventsNote string
}

// RunDevnet starts the network, prints the pool's state to out as it
// changes until ctx ends or cfg.Duration passes, then shuts everything down.
func RunDevnet(ctx context.Context, cfg DevnetConfig, out io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	d := &Devnet{cfg: cfg, out: out, byID: make(map[string]*devClient), start: time.Now()}
	if err := d.startServer(); err != nil {
		return err
	}
	defer d.stack.Close()
	if err := d.makeClients(); err != nil {
		return err
	}
	if err := d.fund(); err != nil {
		return err
	}
	self := d.stack.Server().Self()
	var pre strings.Builder
	fmt.Fprintf(&pre, "devnet: 1 server, %d clients (%d paid with %s tokens each), room for %d active, %d waiting\n",
		cfg.Clients, cfg.Paid, cfg.PaidTokens, cfg.Server.MaxClients, cfg.Server.PoolMaxInactive())
	fmt.Fprintf(&pre, "server  %s\n", self.String())
	if ep := d.stack.IPCEndpoint(); ep != "" {
		fmt.Fprintf(&pre, "rpc     %s   (try: vflux clients --rpc %s)\n", ep, ep)
	}
	fmt.Fprintf(&pre, "query   vflux query %s\n\n", self.URLv4())
	d.preamble = pre.String()
	if !cfg.Redraw {
		io.WriteString(d.out, d.preamble)
	}

	// Subscribed before the clients start, so the view has every event.
	events := make(chan clientpool.Event, eventBuffer)
	sub := d.svc.Pool().SubscribeEvents(events)
	defer sub.Unsubscribe()
	var wg sync.WaitGroup
	for _, c := range d.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runClient(ctx, c)
		}()
	}
	d.watch(ctx, events, sub.Err())
	wg.Wait()
	fmt.Fprintf(d.out, "devnet stopped after %v\n", time.Since(d.start).Round(time.Second))
	return nil
}

func (d *Devnet) startServer() error {
	scfg := d.cfg.Server
	scfg.Serve = true
	gc := &gethnode.Config{
		Name:    "vflux-devnet",
		IPCPath: d.cfg.IPCPath,
		P2P: p2p.Config{
			ListenAddr:  "127.0.0.1:0",
			DiscoveryV5: true,
		},
	}
	ConfigureP2P(&gc.P2P, scfg, false)
	stack, err := gethnode.New(gc)
	if err != nil {
		return fmt.Errorf("devnet server: %w", err)
	}
	if w := d.cfg.Workload; w != nil {
		if err := w.Setup(stack); err != nil {
			stack.Close()
			return fmt.Errorf("devnet server: %w", err)
		}
	}
	svc, err := New(stack, scfg)
	if err != nil {
		stack.Close()
		return err
	}
	if err := stack.Start(); err != nil {
		svc.Stop()
		return fmt.Errorf("devnet server: %w", err)
	}
	d.stack, d.svc = stack, svc
	return nil
}

func (d *Devnet) makeClients() error {
	for i := 0; i < d.cfg.Clients; i++ {
		key, err := crypto.GenerateKey()
		if err != nil {
			return err
		}
		c := &devClient{
			name: fmt.Sprintf("free-%d", i+1),
			paid: i < d.cfg.Paid,
			key:  key,
			id:   enode.PubkeyToIDV4(&key.PublicKey),

			lastFrame: d.start,
		}
		if c.paid {
			c.name = fmt.Sprintf("paid-%d", i+1)
		}
		d.clients = append(d.clients, c)
		d.byID[c.id.String()] = c
	}
	return nil
}

// connect starts a client p2p server for one connection and dials the devnet
// server through it. The caller stops the returned p2p.Server.
func (d *Devnet) connect(ctx context.Context, c *devClient) (*p2p.Server, *protocol.Client, error) {
	peers := protocol.NewClientPeers()
	protos := []p2p.Protocol{peers.Protocol()}
	var run func(context.Context, enode.ID, *atomic.Uint64)
	if w := d.cfg.Workload; w != nil {
		var more []p2p.Protocol
		more, run = w.Client()
		protos = append(protos, more...)
	}
	srv := &p2p.Server{Config: p2p.Config{
		PrivateKey:  c.key,
		MaxPeers:    1,
		NoDiscovery: true,
		Name:        "vflux-devnet-" + c.name,
		Protocols:   protos,
	}}
	if err := srv.Start(); err != nil {
		return nil, nil, fmt.Errorf("devnet %s: %w", c.name, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	server := d.stack.Server().Self()
	cl, err := peers.Dial(dctx, srv, server)
	if err != nil {
		srv.Stop()
		return nil, nil, err
	}
	if run != nil {
		// It ends with the connection (srv.Stop) or ctx.
		go run(ctx, server.ID(), &c.served)
	}
	return srv, cl, nil
}

// fund gives every paid client its tokens through the RPC API's code path.
func (d *Devnet) fund() error {
	api := &API{s: d.svc}
	for _, c := range d.clients {
		if c.paid && d.cfg.PaidTokens.Sign() > 0 {
			if _, err := api.AddBalance(c.id.String(), Amount(d.cfg.PaidTokens.String()), nil); err != nil {
				return fmt.Errorf("fund %s: %w", c.name, err)
			}
		}
	}
	return nil
}

// runClient keeps one client connected: dial, ask for more capacity when
// paid, wait for the disconnect, wait Redial, repeat.
func (d *Devnet) runClient(ctx context.Context, c *devClient) {
	for ctx.Err() == nil {
		started := time.Now()
		srv, cl, err := d.connect(ctx, c)
		if err != nil && ctx.Err() == nil {
			c.dialFailed.Store(&dialFailure{started: started, at: time.Now(), err: err})
		}
		if err == nil {
			c.dialFailed.Store(nil)
			if c.paid {
				want := d.cfg.PaidCap
				if want == 0 {
					want = 2 * d.cfg.Server.MinCap
				}
				// What it gets shows in the view: the pool's
				// capacityChanged event and the client's row.
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				cl.RequestCapacity(rctx, want, 0)
				rcancel()
			}
			if !d.serve(ctx, cl) {
				cl.Close()
				<-cl.Done()
				srv.Stop()
				return
			}
			srv.Stop()
		}
		select {
		case <-time.After(d.cfg.Redial):
		case <-ctx.Done():
			return
		}
	}
}

// serve keeps a connected client busy with one "bal" request per second over
// RLPx (charged as request cost) until the connection ends (true) or ctx
// ends (false).
func (d *Devnet) serve(ctx context.Context, cl *protocol.Client) bool {
	var reqs vflux.Requests
	if _, err := reqs.Add(d.cfg.Server.ServiceName, vflux.BalanceQueryName, []interface{}{}); err != nil {
		return ctx.Err() == nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cl.Vflux(rctx, reqs) // a Busy answer or a disconnect shows in the events
			cancel()
		case <-cl.Done():
			return true
		case <-ctx.Done():
			return false
		}
	}
}

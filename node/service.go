package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/log"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/protocol"
	"github.com/vflux-net/vflux/vflux"
)

// Service is vflux serving on one go-ethereum node: the balance database, the
// client pool, the vflux request server and the "vfx" capability. It is the
// node's Lifecycle.
type Service struct {
	cfg     Config
	stack   *gethnode.Node
	db      ethdb.KeyValueStore
	pool    *clientpool.ClientPool
	server  *vflux.Server
	handler *protocol.Handler
	clients *clientRegistry
	log     log.Logger

	// mu guards the fields below; it serialises Start, Stop and the RPC
	// setters (which write to the database Stop closes). The settings
	// themselves are the pool's. Lock order: mu before the pool's locks (pool
	// methods are called with mu held; the pool never calls into Service).
	mu                sync.Mutex
	started, stopped  bool
	quit              chan struct{}
	loopDone, logDone chan struct{}

	// statusArmed, set by tests before Start, receives after the log loop
	// armed its status timer (so a test can move a simulated clock past it).
	statusArmed chan struct{}
	// stopping is set when Stop begins: peers closed from then on did not
	// leave on their own (the log says so).
	stopping atomic.Bool
}

// New sets vflux serving up on stack, which must not have been started:
// it opens the balance database, creates the pool and the request server, and
// registers the "vfx" protocol, the lifecycle and the "vflux" RPC API (SPEC
// 6). If the stack is never started, call Stop to close the database.
func New(stack *gethnode.Node, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkGoverned(stack.Server().Protocols, cfg.Govern); err != nil {
		return nil, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = mclock.System{}
	}
	db, err := openBalanceDB(stack, cfg)
	if err != nil {
		return nil, err
	}
	pool := clientpool.NewClientPool(db, cfg.MinCap, cfg.ConnectedBias, clock, func() bool { return true })
	if err := pool.Err(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open client pool: %w", err)
	}
	pool.SetLimits(cfg.MaxClients, cfg.TotalCapacity())
	pool.SetMaxInactive(cfg.PoolMaxInactive())
	pool.SetMaxPerFreeID(int(cfg.MaxPerIP))
	pool.SetDefaultFactors(cfg.PosPrices.PoolFactors(), cfg.NegPrices.PoolFactors())
	pool.SetExpirationTCs(cfg.ExpirationTCs())
	if err := restoreSettings(pool, cfg, log.Root()); err != nil {
		pool.Stop()
		db.Close()
		return nil, err
	}

	server := vflux.NewServer(vflux.ServerConfig{Clock: clock, Rate: cfg.RequestRate, MaxQueuedCost: cfg.MaxQueuedCost})
	for _, name := range []string{cfg.ServiceName, params.LegacyServiceName} {
		if err := server.Register(pool, name, "vflux client pool"); err != nil {
			server.Stop()
			pool.Stop()
			db.Close()
			return nil, fmt.Errorf("register vflux service %q: %w", name, err)
		}
	}
	s := &Service{
		cfg:    cfg,
		stack:  stack,
		db:     db,
		pool:   pool,
		server: server,
		clients: newClientRegistry(pool, cfg.InactiveAllowance, flowConfig{
			clock:      clock,
			minCap:     cfg.MinCap,
			costBase:   params.RequestCostBase,
			costPerKB:  params.RequestCostPerKB,
			bufferSecs: params.BufferSecs,
			queueBytes: governQueueBytes,
			costs:      codeCosts(cfg.GovernCosts),
		}),
		log:  log.Root(),
		quit: make(chan struct{}),
	}
	s.handler = protocol.NewHandler(protocol.Config{
		Pool:              s.clients,
		Requests:          server,
		MinCap:            cfg.MinCap,
		InactiveAllowance: cfg.InactiveAllowance,
		Clock:             clock,
	})
	s.governProtocols(stack.Server().Protocols, cfg.Govern)
	stack.RegisterProtocols([]p2p.Protocol{s.handler.Protocol()})
	stack.RegisterLifecycle(s)
	stack.RegisterAPIs([]rpc.API{{Namespace: rpcNamespace, Service: &API{s: s}}})
	return s, nil
}

// openBalanceDB opens the balance LevelDB in the node's instance directory
// (balanceDB: top-ups are written synced), or an in-memory store for a node
// without a data directory.
func openBalanceDB(stack *gethnode.Node, cfg Config) (ethdb.KeyValueStore, error) {
	path := stack.ResolvePath(params.DataDirName)
	if path == "" {
		return memorydb.New(), nil
	}
	db, err := openBalanceLevelDB(path, cfg.DatabaseCache, cfg.DatabaseHandles)
	if err != nil {
		return nil, fmt.Errorf("open balance database %s: %w", path, err)
	}
	return db, nil
}

// Start starts the pool's timers, the metrics loop and, when discv5 is on,
// the TALKREQ handler. It warns when HTTP or WebSocket serves the admin API.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("vflux service already stopped")
	}
	if s.started {
		return nil
	}
	s.started = true
	s.pool.Start()
	s.loopDone = make(chan struct{})
	// Subscribed before Start returns, so no event of a client that connects
	// right after is missed.
	events := make(chan clientpool.Event, eventBuffer)
	go s.metricsLoop(s.loopDone, events, s.pool.SubscribeEvents(events))
	s.logDone = make(chan struct{})
	s.startLogLoop(s.logDone)
	srv := s.stack.Server()
	if disc := srv.DiscoveryV5(); disc != nil {
		disc.RegisterTalkHandler(params.TalkProtocolID, talkHandler(s.server))
	} else {
		s.log.Warn("Discovery v5 is off: vflux capacity queries over TALKREQ are not served, RLPx clients only")
	}
	maxCount, maxCap := s.pool.Limits()
	if uint64(srv.MaxPeers) < maxCount {
		s.log.Warn("Peer limit is below maxclients: the pool can never fill", "maxpeers", srv.MaxPeers, "maxclients", maxCount)
	}
	s.warnExposedAdminAPI()
	s.log.Info("vflux serving", "service", s.cfg.ServiceName, "maxclients", maxCount, "capacity", maxCap,
		"mincap", s.cfg.MinCap, "maxpeers", srv.MaxPeers, "totaltokens", s.pool.TotalTokenAmount())
	return nil
}

// Stop stops serving in SPEC 6's order: the request server (it answers nothing
// from then on; discv5 cannot unregister a handler), the peer loops (they
// return DiscQuitting and are waited for; governed protocols read
// DiscQuitting and new clients are refused), the pool (persists every balance),
// then the database. A second Stop does nothing.
func (s *Service) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.stopping.Store(true)
	s.server.Stop()
	s.handler.Stop()
	s.clients.stop()
	close(s.quit)
	if s.loopDone != nil {
		<-s.loopDone
		<-s.logDone
	}
	s.pool.Stop()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close balance database: %w", err)
	}
	s.log.Info("vflux stopped")
	return nil
}

// Pool returns the client pool (for tests and embedding programs).
func (s *Service) Pool() *clientpool.ClientPool { return s.pool }

// PeerCount returns the number of connected "vfx" clients.
func (s *Service) PeerCount() int { return s.handler.PeerCount() }

// metricsLoop marks client event meters and keeps the gauges current: on
// every pool event and at least every params.MetricsRefreshInterval (spending
// changes the token total without events).
func (s *Service) metricsLoop(done chan struct{}, events <-chan clientpool.Event, sub event.Subscription) {
	defer close(done)
	defer sub.Unsubscribe()
	ticker := time.NewTicker(params.MetricsRefreshInterval)
	defer ticker.Stop()
	updateGauges(s.pool)
	for {
		select {
		case ev := <-events:
			markEvent(ev)
			updateGauges(s.pool)
		case <-ticker.C:
			updateGauges(s.pool)
		case <-s.quit:
			return
		case <-sub.Err():
			return
		}
	}
}

// eventBuffer is the channel size of our pool event subscriptions; the pool
// has its own bounded queue per subscriber in front of it.
const eventBuffer = 64

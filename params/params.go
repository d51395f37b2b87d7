package params

import "time"

// Names and versions on the wire.
const (
	// ProtocolName is the devp2p capability name of the vflux protocol.
	ProtocolName = "vfx"
	// ProtocolVersion is the only version of the "vfx" capability we speak.
	ProtocolVersion = 1
	// ENRKey is the node record entry ("vfx" = [version]) that marks a serving node.
	ENRKey = "vfx"
	// TalkProtocolID is the discv5 TALKREQ protocol id vflux requests arrive on.
	TalkProtocolID = "vfx"
	// ServiceName is the vflux service name the client pool is registered under.
	ServiceName = "vfx"
	// LegacyServiceName is the service name go-ethereum's former LES vflux clients
	// send capacity queries to; the node registers the pool under it too.
	LegacyServiceName = "les"
)

// Wire limits.
const (
	// MaxRequestsPerBatch is the most requests one vflux batch may carry; a larger
	// batch gets no reply at all.
	MaxRequestsPerBatch = 16
	// MaxCapQueryAmounts is the most token amounts one "cq" request may ask about.
	MaxCapQueryAmounts = 16
	// MaxMessageSize is the largest "vfx" RLPx message accepted (64 KiB); larger
	// ones are a protocol error.
	MaxMessageSize = 64 * 1024
	// TalkReplyBudget is the most bytes of encoded replies sent over TALKREQ, so an
	// answer fits in one discv5 packet (1280 bytes minus headers).
	TalkReplyBudget = 1000
	// HandshakeTimeout is how long a peer has to send its Handshake. It is not
	// what protects the peer slots: a peer is a client of the pool from the
	// moment it connects, so one that never sends its Handshake is ranked like
	// any waiting client and a better-paying newcomer displaces it at once. It
	// only bounds how long a silent peer of equal (zero) priority may wait, and
	// a waiting free client that did its handshake may wait longer still (the
	// inactive allowance, 10 s by default); so it stays 5 s, ample for the one
	// round trip the handshake takes on a slow link.
	HandshakeTimeout = 5 * time.Second
	// MaxBusyStrikes is how many consecutive Busy replies a client may receive
	// before it is dropped as useless: a well-behaved client paces itself with the
	// handshake's metering constants and never collects this many.
	MaxBusyStrikes = 10
)

// Request cost model. A client's capacity is its recharge rate in cost units per
// second; a request costs RequestCostBase plus RequestCostPerKB per KiB moved.
// With these numbers a small request (under 200 bytes in and out) costs about 100
// units, so a client at DefaultMinCap makes about 10 small requests per second.
const (
	// RequestCostBase is the fixed cost of one served request, in cost units.
	RequestCostBase = 80
	// RequestCostPerKB is the cost per KiB of request plus reply bytes.
	RequestCostPerKB = 100
	// BufferSecs is how many seconds of capacity a client may spend in a burst.
	BufferSecs = 5
)

// Client pool defaults (SPEC 9). Price factors are in the edge units of the RPC
// API and the flags: time per second, capacity per second per 1,000,000 units,
// requests per cost unit.
const (
	// DefaultMinCap is the capacity every active client gets at least.
	DefaultMinCap = 1000
	// DefaultMaxClients is the default for --vflux.maxclients.
	DefaultMaxClients = 100
	// DefaultMaxPerIP is the default for --vflux.maxperip: the most clients
	// connected at once from one IPv4 address or IPv6 /64 (one free-client
	// ID). 16 lets a NAT or a LAN of a few users in, and is far below the
	// hundreds of connections a flood from one address needs to crowd out
	// other clients or to make the clients sharing its negative balance
	// expensive to serve.
	DefaultMaxPerIP = 16
	// DefaultCapacityPerClient multiplies maxclients*mincap to give the default
	// total capacity (--vflux.capacity), so priority clients can ask for more.
	DefaultCapacityPerClient = 10
	// DefaultConnectedBias is how long an incumbent is protected from newcomers.
	DefaultConnectedBias = 3 * time.Minute
	// DefaultInactiveAllowance is how long a waiting free client stays connected.
	DefaultInactiveAllowance = 10 * time.Second
	// DefaultPosExpirationTC is the positive balance e-folding time in seconds (0 = never).
	DefaultPosExpirationTC = 0
	// DefaultNegExpirationTC is the negative balance e-folding time in seconds (1 h).
	DefaultNegExpirationTC = 3600
	// DefaultTimeFactor is the default price of connection time, tokens per second.
	DefaultTimeFactor = 0
	// DefaultCapacityFactor is the default price of capacity, tokens per second per
	// 1,000,000 units of capacity.
	DefaultCapacityFactor = 1e9
	// DefaultRequestFactor is the default price of requests, tokens per cost unit.
	DefaultRequestFactor = 1
)

// Balance storage.
const (
	// BalanceDropThreshold: balances at or below this many tokens are dropped
	// instead of stored when spending or decay brings them there.
	BalanceDropThreshold = 1000000
	// BalancePersistInterval is the longest an active client's spending stays
	// unpersisted; a crash forgives at most this much spending.
	BalancePersistInterval = time.Minute
	// ExpirationPersistInterval is the longest the expiration offsets stay unpersisted.
	ExpirationPersistInterval = 5 * time.Minute
	// BalanceSweepInterval is how often stored balances that decayed below
	// BalanceDropThreshold are deleted.
	BalanceSweepInterval = time.Hour
	// DBVersion is the schema version written as the 2-byte big-endian key prefix.
	DBVersion = 1
)

// Capacity query.
const (
	// MaxQueryBias clamps the Bias of a capacity query (seconds) to one day.
	MaxQueryBias = 24 * time.Hour
	// CapacityCurveMaxAge is how old (pool clock) a cached capacity curve may be
	// before any change causes a rebuild.
	CapacityCurveMaxAge = 100 * time.Millisecond
	// CapacityCurveRebuildPercent: a change that moves at least this percentage of
	// maxCap causes a rebuild on the next query, however young the curve.
	CapacityCurveRebuildPercent = 1
)

// vflux request server (DoS limiter) defaults.
const (
	// DefaultServerRate is the global rate of vflux requests served per second.
	DefaultServerRate = 1000
	// DefaultMaxQueuedCost bounds the total cost of queued requests.
	DefaultMaxQueuedCost = 256
	// MaxWaiters is the most requests that may wait in the limiter at once.
	MaxWaiters = 256
	// TalkMaxWait is the longest a TALKREQ request waits in the limiter: well
	// inside discv5's ~200 ms handler budget.
	TalkMaxWait = 50 * time.Millisecond
)

// Node wiring (package node, cmd/vflux).
const (
	// DefaultDatabaseCache is the LevelDB cache of the balance database, in MiB:
	// balances are small and read once per connection.
	DefaultDatabaseCache = 16
	// DefaultDatabaseHandles is the number of open files the balance LevelDB may use.
	DefaultDatabaseHandles = 64
	// MinDatabaseCache and MinDatabaseHandles are what the balance LevelDB
	// gets at least (go-ethereum's minimums for its own LevelDB): smaller
	// values are raised to these.
	MinDatabaseCache   = 16
	MinDatabaseHandles = 16
	// DatabaseCacheLimit is the largest DatabaseCache (MiB) a config may ask
	// for. LevelDB allocates a quarter of it as a write buffer when it opens,
	// so an absurd value kills the node with an out-of-memory crash; a stored
	// balance is about 100 bytes, so 1 GiB caches ten million clients.
	DatabaseCacheLimit = 1024
	// DatabaseHandlesLimit is the largest DatabaseHandles: each handle is an
	// open file, taken from the descriptors the node needs for its peers (one
	// per connection; the usual soft limit is 1024 in all), and the balance
	// database has far fewer table files than that.
	DatabaseHandlesLimit = 1024
	// ClientsLimit bounds MaxClients and MaxInactive (and the RPC's setLimits
	// count): peer slots are sized from them, so slot arithmetic cannot
	// overflow and a typo does not open a million peer slots.
	ClientsLimit = 1 << 20
	// MaxQueuedCostLimit bounds MaxQueuedCost (request cost units). Waiting
	// requests are capped by MaxWaiters anyway, so a larger bound would only
	// switch the cost check off; this catches typos.
	MaxQueuedCostLimit = 1 << 24
	// MinRequestRate and MaxRequestRate bound a non-zero RequestRate (requests
	// per second; 0 = unlimited). The limiter works in integer nanoseconds
	// per request: below the minimum one request would wait minutes, and far
	// below it the arithmetic overflows; above the maximum a request would be
	// due more often than every nanosecond.
	MinRequestRate = 0.01
	MaxRequestRate = 1e9
	// DataDirName is the instance-directory entry holding the balance LevelDB
	// (<datadir>/vflux/vflux with the default node name).
	DataDirName = "vflux"
	// QueryTimeout bounds a TALKREQ capacity query from the command line; discv5
	// itself gives up on an unanswered request after about 700 ms, and the
	// first request to a node also needs a handshake round trip.
	QueryTimeout = 5 * time.Second
)

// Command line defaults (cmd/vflux).
const (
	// DefaultP2PPort is the default TCP and UDP port (geth's, so firewalls
	// configured for Ethereum nodes work unchanged).
	DefaultP2PPort = 30303
	// DefaultMaxPeers is the peer limit of a node that does not serve; a serving
	// node sizes its slots from maxclients (SPEC 6 item 5).
	DefaultMaxPeers = 50
	// DefaultMetricsAddr and DefaultMetricsPort are where --metrics serves the
	// Prometheus endpoint (/debug/metrics/prometheus).
	DefaultMetricsAddr = "127.0.0.1"
	DefaultMetricsPort = 6060
	// DefaultVerbosity is the log level: 0 silent ... 3 info ... 5 trace.
	DefaultVerbosity = 3
	// DefaultIPCName is the IPC endpoint file in the data directory.
	DefaultIPCName = "vflux.ipc"
	// DefaultNodeName names the node's instance directory (<datadir>/vflux).
	DefaultNodeName = "vflux"
	// DefaultDataDirName is the data directory under the user's home.
	DefaultDataDirName = ".vflux"
)

// Metrics.
const (
	// MetricsRefreshInterval is how often the node refreshes its gauges when no
	// pool event does (spending changes the token total silently).
	MetricsRefreshInterval = 5 * time.Second
	// MaxConnectedBias bounds the connected bias the RPC API accepts; capacity
	// queries clamp their bias to the same day.
	MaxConnectedBias = MaxQueryBias
)

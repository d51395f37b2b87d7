package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/params"
)

// Flag categories, as in geth's help output.
const (
	catNode    = "NODE"
	catP2P     = "NETWORKING"
	catRPC     = "API AND CONSOLE"
	catVflux   = "VFLUX SERVING"
	catPrice   = "VFLUX PRICING"
	catMetrics = "METRICS"
	catLog     = "LOGGING"
	catClient  = "CLIENT"
)

var (
	configFlag = &cli.StringFlag{
		Name: "config", Usage: "TOML configuration file (see dumpconfig); flags override it", Category: catNode,
	}
	dataDirFlag = &cli.StringFlag{
		Name: "datadir", Usage: "Data directory for the balance database, node key and IPC endpoint",
		Value: "~/" + params.DefaultDataDirName, Category: catNode,
	}
	ipcPathFlag = &cli.StringFlag{
		Name: "ipcpath", Usage: "IPC endpoint path (a bare name is placed in the datadir)",
		Value: params.DefaultIPCName, Category: catRPC,
	}
	ipcDisableFlag = &cli.BoolFlag{Name: "ipcdisable", Usage: "Disable the IPC-RPC server", Category: catRPC}
	httpFlag       = &cli.BoolFlag{Name: "http", Usage: "Enable the HTTP-RPC server", Category: catRPC}
	httpAddrFlag   = &cli.StringFlag{Name: "http.addr", Usage: "HTTP-RPC server listening interface", Value: "localhost", Category: catRPC}
	httpPortFlag   = &cli.IntFlag{Name: "http.port", Usage: "HTTP-RPC server listening port", Value: 8545, Category: catRPC}
	httpAPIFlag    = &cli.StringFlag{Name: "http.api", Usage: "APIs offered over HTTP-RPC (add \"vflux\" to expose the admin API)", Value: "web3", Category: catRPC}
	wsFlag         = &cli.BoolFlag{Name: "ws", Usage: "Enable the WebSocket-RPC server", Category: catRPC}
	wsAddrFlag     = &cli.StringFlag{Name: "ws.addr", Usage: "WebSocket-RPC server listening interface", Value: "localhost", Category: catRPC}
	wsPortFlag     = &cli.IntFlag{Name: "ws.port", Usage: "WebSocket-RPC server listening port", Value: 8546, Category: catRPC}
	wsAPIFlag      = &cli.StringFlag{Name: "ws.api", Usage: "APIs offered over WebSocket-RPC (add \"vflux\" to expose the admin API)", Value: "web3", Category: catRPC}

	listenAddrFlag = &cli.StringFlag{Name: "addr", Usage: "Listening IP for TCP and UDP (empty = all interfaces)", Category: catP2P}
	portFlag       = &cli.IntFlag{Name: "port", Usage: "Network listening port, TCP and UDP (0 = pick a free one)", Value: params.DefaultP2PPort, Category: catP2P}
	discPortFlag   = &cli.IntFlag{Name: "discovery.port", Usage: "UDP port for discovery if it differs from --port (default: same as --port)", Category: catP2P}
	natFlag        = &cli.StringFlag{Name: "nat", Usage: "NAT port mapping (any|none|upnp|pmp|extip:<IP>); default none", Category: catP2P}
	bootnodesFlag  = &cli.StringFlag{Name: "bootnodes", Usage: "Comma separated enode URLs or ENRs for discovery bootstrap (default none)", Category: catP2P}
	nodeKeyFlag    = &cli.StringFlag{Name: "nodekey", Usage: "P2P node key file", Category: catP2P}
	nodeKeyHexFlag = &cli.StringFlag{Name: "nodekeyhex", Usage: "P2P node key as hex (for testing)", Category: catP2P}
	maxPeersFlag   = &cli.IntFlag{Name: "maxpeers", Usage: "Maximum number of peers (0 = serving: maxclients + maxinactive, else 50)", Category: catP2P}
	noDiscoverFlag = &cli.BoolFlag{Name: "nodiscover", Usage: "Disable discovery (no UDP socket: no TALKREQ queries, RLPx only)", Category: catP2P}

	metricsFlag     = &cli.BoolFlag{Name: "metrics", Usage: "Enable metrics and serve them in Prometheus format", Category: catMetrics}
	metricsAddrFlag = &cli.StringFlag{Name: "metrics.addr", Usage: "Metrics HTTP server listening interface", Value: params.DefaultMetricsAddr, Category: catMetrics}
	metricsPortFlag = &cli.IntFlag{Name: "metrics.port", Usage: "Metrics HTTP server listening port (path /debug/metrics/prometheus)", Value: params.DefaultMetricsPort, Category: catMetrics}
	verbosityFlag   = &cli.IntFlag{Name: "verbosity", Usage: "Logging verbosity: 0=silent, 1=error, 2=warn, 3=info, 4=debug, 5=trace", Value: params.DefaultVerbosity, Category: catLog}

	serveFlag       = &cli.BoolFlag{Name: "vflux.serve", Usage: "Serve clients (off by default)", Category: catVflux}
	maxClientsFlag  = &cli.Uint64Flag{Name: "vflux.maxclients", Usage: "Maximum number of active clients", Value: params.DefaultMaxClients, Category: catVflux}
	capacityFlag    = &cli.Uint64Flag{Name: "vflux.capacity", Usage: "Total capacity shared by active clients (0 = maxclients*mincap*10)", Category: catVflux}
	minCapFlag      = &cli.Uint64Flag{Name: "vflux.mincap", Usage: "Capacity of every active client at least", Value: params.DefaultMinCap, Category: catVflux}
	biasFlag        = &cli.DurationFlag{Name: "vflux.bias", Usage: "Connected bias: how long an incumbent is protected from newcomers", Value: params.DefaultConnectedBias, Category: catVflux}
	inactiveFlag    = &cli.DurationFlag{Name: "vflux.inactive", Usage: "How long a free client may wait without capacity", Value: params.DefaultInactiveAllowance, Category: catVflux}
	requestRateFlag = &cli.Float64Flag{
		Name: "vflux.requestrate", Usage: "vflux requests served per second by the whole node, RLPx and TALKREQ together (0 = unlimited)",
		Value: params.DefaultServerRate, Category: catVflux,
	}
	maxQueuedCostFlag = &cli.Uint64Flag{
		Name: "vflux.maxqueuedcost", Usage: "Total cost of requests waiting for the rate limit; over it the biggest sender's queue is dropped (0 = default)",
		Value: params.DefaultMaxQueuedCost, Category: catVflux,
	}
	maxInactiveFlag = &cli.Uint64Flag{Name: "vflux.maxinactive", Usage: "Peer slots for clients waiting without capacity, one kept free for newcomers (0 = maxclients)", Category: catVflux}
	maxPerIPFlag    = &cli.Uint64Flag{Name: "vflux.maxperip", Usage: "Most clients connected at once from one IP address (IPv6: one /64; 0 = unlimited)", Value: params.DefaultMaxPerIP, Category: catVflux}

	resetSettingsFlag = &cli.BoolFlag{Name: "vflux.resetsettings", Usage: "Discard the limits, bias and default prices saved over RPC (restored at start, they win over flags and config)", Category: catVflux}

	priceTimeFlag        = priceFlag("vflux.price.time", "Price of connection time, tokens per second", params.DefaultTimeFactor)
	priceCapacityFlag    = priceFlag("vflux.price.capacity", "Price of capacity, tokens per second per 1,000,000 capacity", params.DefaultCapacityFactor)
	priceRequestFlag     = priceFlag("vflux.price.request", "Price of requests, tokens per cost unit", params.DefaultRequestFactor)
	negPriceTimeFlag     = priceFlag("vflux.price.negative.time", "Negative balance accrual for connection time, per second", params.DefaultTimeFactor)
	negPriceCapacityFlag = priceFlag("vflux.price.negative.capacity", "Negative balance accrual for capacity, per second per 1,000,000 capacity", params.DefaultCapacityFactor)
	negPriceRequestFlag  = priceFlag("vflux.price.negative.request", "Negative balance accrual for requests, per cost unit", params.DefaultRequestFactor)
	posExpFlag           = &cli.DurationFlag{Name: "vflux.expiration.positive", Usage: "E-folding time of positive balances (0 = never)", Value: params.DefaultPosExpirationTC * time.Second, Category: catPrice}
	negExpFlag           = &cli.DurationFlag{Name: "vflux.expiration.negative", Usage: "E-folding time of negative balances (0 = never)", Value: params.DefaultNegExpirationTC * time.Second, Category: catPrice}

	// Client-side flags of the RPC subcommands.
	rpcURLFlag = &cli.StringFlag{Name: "rpc", Usage: "RPC endpoint of the node (IPC path, http://, ws://); default: the IPC endpoint in --datadir", Category: catClient}
)

func priceFlag(name, usage string, def float64) *cli.Float64Flag {
	return &cli.Float64Flag{Name: name, Usage: usage, Value: def, Category: catPrice}
}

// nodeFlags are the flags of the default action (running a node).
var nodeFlags = []cli.Flag{
	configFlag, dataDirFlag,
	ipcPathFlag, ipcDisableFlag, httpFlag, httpAddrFlag, httpPortFlag, httpAPIFlag,
	wsFlag, wsAddrFlag, wsPortFlag, wsAPIFlag,
	listenAddrFlag, portFlag, discPortFlag, natFlag, bootnodesFlag, nodeKeyFlag, nodeKeyHexFlag,
	maxPeersFlag, noDiscoverFlag,
	metricsFlag, metricsAddrFlag, metricsPortFlag, verbosityFlag, logFormatFlag, vmoduleFlag,
	serveFlag, maxClientsFlag, capacityFlag, minCapFlag, biasFlag, inactiveFlag, maxInactiveFlag, maxPerIPFlag,
	requestRateFlag, maxQueuedCostFlag,
	resetSettingsFlag,
	priceTimeFlag, priceCapacityFlag, priceRequestFlag,
	negPriceTimeFlag, negPriceCapacityFlag, negPriceRequestFlag,
	posExpFlag, negExpFlag,
	governFlag, devFlag, devPeriodFlag,
}

// flagTable renders the flags as a Markdown table (for the README).
func flagTable(flags []cli.Flag) string {
	out := "| flag | default | meaning |\n|---|---|---|\n"
	for _, f := range flags {
		df, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		def := df.GetDefaultText()
		if def == "" {
			def = df.GetValue()
		}
		usage := strings.ReplaceAll(df.GetUsage(), "|", "\\|")
		out += fmt.Sprintf("| `--%s` | %s | %s |\n", f.Names()[0], def, usage)
	}
	return out
}

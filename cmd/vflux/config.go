package main

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/ethereum/go-ethereum/crypto"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/nat"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/client"
	vfnode "github.com/vflux-net/vflux/node"
	"github.com/vflux-net/vflux/params"
)

// fileConfig is everything the node command runs from, in the layout of the
// --config TOML file and of dumpconfig: [Node], [Node.P2P], [Vflux], [Metrics],
// [Log], [Dev].
type fileConfig struct {
	Node    nodeSection
	Vflux   vfnode.Config
	Metrics metricsSection
	Log     logSection
	Dev     devSection
}

// nodeSection mirrors the go-ethereum node settings the command exposes, as
// plain values (go-ethereum's own config types do not round-trip through TOML).
type nodeSection struct {
	DataDir     string
	IPCPath     string // "" disables IPC; a bare name is resolved in DataDir
	HTTPHost    string // "" disables HTTP-RPC
	HTTPPort    int
	HTTPModules []string
	WSHost      string // "" disables WebSocket-RPC
	WSPort      int
	WSModules   []string
	P2P         p2pSection
}

type p2pSection struct {
	ListenAddr     string // host:port of the TCP listener (and UDP unless DiscAddr)
	DiscAddr       string // host:port of the discovery UDP socket; "" = ListenAddr
	MaxPeers       int    // 0 = automatic (serving: maxclients + maxinactive)
	NoDiscovery    bool
	NAT            string   // "" = none; else as --nat (extip:1.2.3.4, upnp, pmp, any)
	BootstrapNodes []string // enode URLs or ENRs
	NodeKey        string   // file with a hex private key
	NodeKeyHex     string   `toml:",omitempty"`
}

type metricsSection struct {
	Enabled bool
	HTTP    string
	Port    int
}

type logSection struct {
	Verbosity int
	Format    string // terminal, logfmt or json
	Vmodule   string `toml:",omitempty"`
}

func defaultFileConfig() fileConfig {
	return fileConfig{
		Node: nodeSection{
			DataDir:     defaultDataDir(),
			IPCPath:     params.DefaultIPCName,
			HTTPPort:    gethnode.DefaultHTTPPort,
			HTTPModules: []string{"web3"},
			WSPort:      gethnode.DefaultWSPort,
			WSModules:   []string{"web3"},
			P2P: p2pSection{
				ListenAddr: fmt.Sprintf(":%d", params.DefaultP2PPort),
			},
		},
		Vflux:   vfnode.DefaultConfig(),
		Metrics: metricsSection{HTTP: params.DefaultMetricsAddr, Port: params.DefaultMetricsPort},
		Log:     logSection{Verbosity: params.DefaultVerbosity, Format: "terminal"},
		Dev:     defaultDevSection(),
	}
}

func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, params.DefaultDataDirName)
}

// loadConfigFile decodes a TOML file over cfg. Unknown keys are an error, so a
// typo does not silently leave a default in place.
func loadConfigFile(path string, cfg *fileConfig) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(cfg)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return fmt.Errorf("config file %s: unknown setting(s): %s", path, strings.Join(keys, ", "))
	}
	return nil
}

// dumpConfig writes cfg as TOML.
func dumpConfig(w *bytes.Buffer, cfg *fileConfig) error {
	return toml.NewEncoder(w).Encode(cfg)
}

// makeConfig builds the config: defaults, then the --config file, then the
// flags the user set explicitly (flags win over the file).
func makeConfig(ctx *cli.Context) (*fileConfig, error) {
	cfg := defaultFileConfig()
	if path := ctx.String(configFlag.Name); path != "" {
		if err := loadConfigFile(path, &cfg); err != nil {
			return nil, err
		}
	}
	if err := applyNodeFlags(ctx, &cfg); err != nil {
		return nil, err
	}
	if err := applyVfluxFlags(ctx, &cfg.Vflux); err != nil {
		return nil, err
	}
	if err := applyDevFlags(ctx, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.Vflux.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func applyNodeFlags(ctx *cli.Context, cfg *fileConfig) error {
	n := &cfg.Node
	if ctx.IsSet(dataDirFlag.Name) {
		n.DataDir = expandHome(ctx.String(dataDirFlag.Name))
	}
	n.DataDir = expandHome(n.DataDir)
	if ctx.IsSet(ipcPathFlag.Name) {
		n.IPCPath = ctx.String(ipcPathFlag.Name)
	}
	if ctx.Bool(ipcDisableFlag.Name) {
		n.IPCPath = ""
	}
	if ctx.IsSet(listenAddrFlag.Name) || ctx.IsSet(portFlag.Name) {
		host, port, err := net.SplitHostPort(n.P2P.ListenAddr)
		if err != nil {
			host, port = "", strconv.Itoa(params.DefaultP2PPort)
		}
		if ctx.IsSet(listenAddrFlag.Name) {
			host = ctx.String(listenAddrFlag.Name)
		}
		if ctx.IsSet(portFlag.Name) {
			port = strconv.Itoa(ctx.Int(portFlag.Name))
		}
		n.P2P.ListenAddr = net.JoinHostPort(host, port)
	}
	if ctx.IsSet(discPortFlag.Name) {
		host, _, _ := net.SplitHostPort(n.P2P.ListenAddr)
		n.P2P.DiscAddr = net.JoinHostPort(host, strconv.Itoa(ctx.Int(discPortFlag.Name)))
	}
	if ctx.IsSet(natFlag.Name) {
		n.P2P.NAT = ctx.String(natFlag.Name)
	}
	if ctx.IsSet(bootnodesFlag.Name) {
		n.P2P.BootstrapNodes = splitList(ctx.String(bootnodesFlag.Name))
	}
	if ctx.IsSet(nodeKeyFlag.Name) {
		n.P2P.NodeKey = ctx.String(nodeKeyFlag.Name)
	}
	if ctx.IsSet(nodeKeyHexFlag.Name) {
		n.P2P.NodeKeyHex = ctx.String(nodeKeyHexFlag.Name)
	}
	if ctx.IsSet(maxPeersFlag.Name) {
		n.P2P.MaxPeers = ctx.Int(maxPeersFlag.Name)
	}
	if ctx.IsSet(noDiscoverFlag.Name) {
		n.P2P.NoDiscovery = ctx.Bool(noDiscoverFlag.Name)
	}
	// HTTP and WebSocket are on only with --http / --ws (or a host in the
	// config file); --http.addr / --ws.addr alone only choose the interface
	// they would listen on and do not start a server; --http=false / --ws=false
	// turn off a server the config file turned on.
	n.HTTPHost = rpcHost(ctx, n.HTTPHost, httpFlag, httpAddrFlag, gethnode.DefaultHTTPHost)
	if ctx.IsSet(httpPortFlag.Name) {
		n.HTTPPort = ctx.Int(httpPortFlag.Name)
	}
	if ctx.IsSet(httpAPIFlag.Name) {
		n.HTTPModules = splitList(ctx.String(httpAPIFlag.Name))
	}
	n.WSHost = rpcHost(ctx, n.WSHost, wsFlag, wsAddrFlag, gethnode.DefaultWSHost)
	if ctx.IsSet(wsPortFlag.Name) {
		n.WSPort = ctx.Int(wsPortFlag.Name)
	}
	if ctx.IsSet(wsAPIFlag.Name) {
		n.WSModules = splitList(ctx.String(wsAPIFlag.Name))
	}
	if ctx.IsSet(metricsFlag.Name) {
		cfg.Metrics.Enabled = ctx.Bool(metricsFlag.Name)
	}
	if ctx.IsSet(metricsAddrFlag.Name) {
		cfg.Metrics.HTTP = ctx.String(metricsAddrFlag.Name)
	}
	if ctx.IsSet(metricsPortFlag.Name) {
		cfg.Metrics.Port = ctx.Int(metricsPortFlag.Name)
	}
	if ctx.IsSet(verbosityFlag.Name) {
		cfg.Log.Verbosity = ctx.Int(verbosityFlag.Name)
	}
	if ctx.IsSet(logFormatFlag.Name) {
		cfg.Log.Format = ctx.String(logFormatFlag.Name)
	}
	if ctx.IsSet(vmoduleFlag.Name) {
		cfg.Log.Vmodule = ctx.String(vmoduleFlag.Name)
	}
	switch cfg.Log.Format {
	case "", "terminal", "logfmt", "json":
	default:
		return fmt.Errorf("log format %q: use terminal, logfmt or json", cfg.Log.Format)
	}
	if cfg.Log.Verbosity < 0 || cfg.Log.Verbosity > 5 {
		return fmt.Errorf("verbosity %d out of range: use 0 (silent) to 5 (trace)", cfg.Log.Verbosity)
	}
	if n.P2P.MaxPeers < 0 {
		return fmt.Errorf("maxpeers %d is negative", n.P2P.MaxPeers)
	}
	return nil
}

// rpcHost returns the listening host of an RPC server that is on when enable
// is set or the config file gave it a host (host != ""); "" keeps it off. An
// explicit addr flag chooses the host of a server that is on, else the config
// file's host or def is used.
func rpcHost(ctx *cli.Context, host string, enable *cli.BoolFlag, addr *cli.StringFlag, def string) string {
	if ctx.IsSet(enable.Name) && !ctx.Bool(enable.Name) {
		return "" // an explicit --http=false / --ws=false wins over the config file
	}
	if !ctx.Bool(enable.Name) && host == "" {
		return ""
	}
	switch {
	case ctx.IsSet(addr.Name):
		return ctx.String(addr.Name)
	case host == "":
		return def
	}
	return host
}

func applyVfluxFlags(ctx *cli.Context, c *vfnode.Config) error {
	if ctx.IsSet(serveFlag.Name) {
		c.Serve = ctx.Bool(serveFlag.Name)
	}
	if ctx.IsSet(maxClientsFlag.Name) {
		c.MaxClients = ctx.Uint64(maxClientsFlag.Name)
	}
	if ctx.IsSet(capacityFlag.Name) {
		c.Capacity = ctx.Uint64(capacityFlag.Name)
	}
	if ctx.IsSet(minCapFlag.Name) {
		c.MinCap = ctx.Uint64(minCapFlag.Name)
	}
	if ctx.IsSet(maxInactiveFlag.Name) {
		c.MaxInactive = ctx.Uint64(maxInactiveFlag.Name)
	}
	if ctx.IsSet(maxPerIPFlag.Name) {
		c.MaxPerIP = ctx.Uint64(maxPerIPFlag.Name)
	}
	if ctx.IsSet(biasFlag.Name) {
		c.ConnectedBias = ctx.Duration(biasFlag.Name)
	}
	if ctx.IsSet(requestRateFlag.Name) {
		c.RequestRate = ctx.Float64(requestRateFlag.Name)
	}
	if ctx.IsSet(maxQueuedCostFlag.Name) {
		c.MaxQueuedCost = ctx.Uint64(maxQueuedCostFlag.Name)
	}
	if ctx.IsSet(resetSettingsFlag.Name) {
		c.ResetSettings = ctx.Bool(resetSettingsFlag.Name)
	}
	if ctx.IsSet(inactiveFlag.Name) {
		c.InactiveAllowance = ctx.Duration(inactiveFlag.Name)
	}
	setFloat := func(f *cli.Float64Flag, dst *float64) {
		if ctx.IsSet(f.Name) {
			*dst = ctx.Float64(f.Name)
		}
	}
	setFloat(priceTimeFlag, &c.PosPrices.Time)
	setFloat(priceCapacityFlag, &c.PosPrices.Capacity)
	setFloat(priceRequestFlag, &c.PosPrices.Request)
	setFloat(negPriceTimeFlag, &c.NegPrices.Time)
	setFloat(negPriceCapacityFlag, &c.NegPrices.Capacity)
	setFloat(negPriceRequestFlag, &c.NegPrices.Request)
	if ctx.IsSet(posExpFlag.Name) {
		c.PosExpiration = ctx.Duration(posExpFlag.Name)
	}
	if ctx.IsSet(negExpFlag.Name) {
		c.NegExpiration = ctx.Duration(negExpFlag.Name)
	}
	return nil
}

// gethConfig converts the file config to go-ethereum's node config.
func gethConfig(cfg *fileConfig) (*gethnode.Config, error) {
	n := cfg.Node
	gc := &gethnode.Config{
		Name:                 params.DefaultNodeName,
		Version:              version,
		DataDir:              n.DataDir,
		IPCPath:              n.IPCPath,
		HTTPHost:             n.HTTPHost,
		HTTPPort:             n.HTTPPort,
		HTTPModules:          n.HTTPModules,
		HTTPVirtualHosts:     gethnode.DefaultConfig.HTTPVirtualHosts,
		HTTPTimeouts:         rpc.DefaultHTTPTimeouts,
		WSHost:               n.WSHost,
		WSPort:               n.WSPort,
		WSModules:            n.WSModules,
		BatchRequestLimit:    gethnode.DefaultConfig.BatchRequestLimit,
		BatchResponseMaxSize: gethnode.DefaultConfig.BatchResponseMaxSize,
		HTTPBodyLimit:        gethnode.DefaultConfig.HTTPBodyLimit,
		P2P: p2p.Config{
			ListenAddr:      n.P2P.ListenAddr,
			DiscAddr:        n.P2P.DiscAddr,
			MaxPeers:        n.P2P.MaxPeers,
			NoDiscovery:     n.P2P.NoDiscovery,
			DiscoveryV5:     !n.P2P.NoDiscovery,
			DiscoveryV4:     false,
			MaxPendingPeers: 0,
		},
	}
	if n.P2P.NAT != "" {
		natif, err := nat.Parse(n.P2P.NAT)
		if err != nil {
			return nil, fmt.Errorf("invalid --nat %q: %w", n.P2P.NAT, err)
		}
		gc.P2P.NAT = natif
	}
	for _, url := range n.P2P.BootstrapNodes {
		bn, err := client.ParseNodeURL(url)
		if err != nil {
			return nil, fmt.Errorf("--bootnodes: %w", err)
		}
		gc.P2P.BootstrapNodesV5 = append(gc.P2P.BootstrapNodesV5, bn)
	}
	key, err := nodeKey(n.P2P.NodeKey, n.P2P.NodeKeyHex)
	if err != nil {
		return nil, err
	}
	gc.P2P.PrivateKey = key
	if cfg.Vflux.Serve {
		vfnode.ConfigureP2P(&gc.P2P, cfg.Vflux, n.P2P.MaxPeers != 0)
	} else if gc.P2P.MaxPeers == 0 {
		gc.P2P.MaxPeers = params.DefaultMaxPeers
	}
	return gc, nil
}

func nodeKey(file, hex string) (*ecdsa.PrivateKey, error) {
	switch {
	case file != "" && hex != "":
		return nil, errors.New("--nodekey and --nodekeyhex are mutually exclusive")
	case file != "":
		k, err := crypto.LoadECDSA(file)
		if err != nil {
			return nil, fmt.Errorf("invalid --nodekey %s: %w", file, err)
		}
		return k, nil
	case hex != "":
		k, err := crypto.HexToECDSA(strings.TrimPrefix(hex, "0x"))
		if err != nil {
			return nil, fmt.Errorf("invalid --nodekeyhex: %w", err)
		}
		return k, nil
	}
	return nil, nil // go-ethereum loads or creates <datadir>/vflux/nodekey
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

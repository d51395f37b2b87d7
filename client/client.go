package client

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/protocol"
)

// Defaults of Config.
const (
	// DefaultQueryTimeout bounds one server's capacity query. discv5 gives up
	// on a TALKREQ after 700 ms; this leaves room for a few retries of a lost
	// packet and no more, so a server that stops answering costs little.
	DefaultQueryTimeout = 3 * time.Second
	// DefaultConcurrency is how many servers are queried at once: enough to
	// survey a small network in one round trip, few enough not to flood.
	DefaultConcurrency = 8
	// DefaultDialTimeout bounds a dial including the vfx handshake.
	DefaultDialTimeout = 10 * time.Second
	// DefaultRetry is how often a connection asks again for the capacity it
	// wants while it holds less (a top-up is not announced to the client).
	DefaultRetry = 30 * time.Second
	// DefaultSurveyTimeout bounds a survey of Hold: discovery never ends on
	// its own, and a few seconds find the servers of a small network.
	DefaultSurveyTimeout = 10 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound how long a server that
	// dropped or refused the client is avoided; the wait doubles each time.
	// go-ethereum does not redial a node within 35 s anyway (dial history).
	DefaultMinBackoff = 5 * time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// Errors callers branch on.
var (
	// ErrNoServers: no server answered (or every one is in backoff).
	ErrNoServers = errors.New("no vflux server available")
	// ErrNoAnswer: a server did not answer a capacity query in time (down,
	// not serving vflux, or dropping requests under load).
	ErrNoAnswer = errors.New("server did not answer")
	// ErrEmptyAnswer: a server answered a capacity query empty: it has no
	// vflux handler, or its request limiter dropped the query under load. It
	// wraps ErrNoAnswer.
	ErrEmptyAnswer = fmt.Errorf("%w: empty answer", ErrNoAnswer)
	// ErrBadNode: a server's ENR or enode URL cannot be used.
	ErrBadNode = errors.New("bad server address")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client closed")
)

// Config configures a Client. Only PrivateKey is required.
type Config struct {
	// PrivateKey is the client's identity: the node ID an operator tops up.
	PrivateKey *ecdsa.PrivateKey
	// ListenIP is where the UDP socket listens, on an ephemeral port; nil
	// means all interfaces. Use 127.0.0.1 for servers on loopback.
	ListenIP net.IP
	// Bootnodes start discovery (Discover, Survey). Servers are queried and
	// dialled too; without either, Survey finds nothing.
	Bootnodes []*enode.Node
	// Servers are known servers, surveyed besides the discovered ones.
	Servers []*enode.Node
	// Service is the vflux service name of the servers' client pool
	// (default params.ServiceName).
	Service string
	// Amounts are the token amounts the survey asks about (at most
	// params.MaxCapQueryAmounts with Budget; default just Budget).
	Amounts []*big.Int
	// Budget is what the caller is willing to add to its balance; the
	// default policy picks the most capacity for it (nil = 0 tokens: a free
	// client). It is added to Amounts when missing.
	Budget *big.Int
	// Bias is how long a queried capacity must be held (0 = the server's
	// connected bias).
	Bias time.Duration
	// Policy orders servers (default ByCapacityFor(Budget)).
	Policy Policy
	// QueryTimeout and Concurrency bound the survey's queries.
	QueryTimeout time.Duration
	Concurrency  int
	// DialTimeout bounds a dial with its handshake.
	DialTimeout time.Duration
	// Retry is how often a connection asks again for the capacity it wants
	// while it holds less; negative means never (only after a capacity
	// update).
	Retry time.Duration
	// SurveyTimeout bounds each survey Hold makes (default 10 s), SurveyLimit
	// the number of answers it waits for (0 = all it finds in that time).
	SurveyTimeout time.Duration
	SurveyLimit   int
	// MinBackoff and MaxBackoff bound the wait before a lost server is tried
	// again by Hold.
	MinBackoff, MaxBackoff time.Duration
}

func (c *Config) setDefaults() {
	if c.Service == "" {
		c.Service = params.ServiceName
	}
	if c.Budget == nil {
		c.Budget = new(big.Int)
	}
	if c.Policy == nil {
		c.Policy = ByCapacityFor(c.Budget)
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Retry == 0 {
		c.Retry = DefaultRetry
	}
	if c.SurveyTimeout == 0 {
		c.SurveyTimeout = DefaultSurveyTimeout
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
}

// amounts is Amounts with Budget appended when missing.
func (c *Config) amounts() []*big.Int {
	out := append([]*big.Int(nil), c.Amounts...)
	for _, a := range out {
		if a.Cmp(c.Budget) == 0 {
			return out
		}
	}
	return append(out, c.Budget)
}

// Client is a vflux client endpoint: one identity, one UDP socket for
// discovery and capacity queries, and outbound RLPx connections to servers.
type Client struct {
	cfg   Config
	srv   *p2p.Server
	peers *protocol.ClientPeers
}

// New starts a client. Close it when done.
func New(cfg Config) (*Client, error) {
	if cfg.PrivateKey == nil {
		return nil, errors.New("client: no private key")
	}
	cfg.setDefaults()
	if n := len(cfg.amounts()); n > params.MaxCapQueryAmounts {
		return nil, fmt.Errorf("client: %d query amounts, at most %d", n, params.MaxCapQueryAmounts)
	}
	listen := cfg.ListenIP
	if listen == nil {
		listen = net.IPv4zero
	}
	peers := protocol.NewClientPeers()
	proto := peers.Protocol()
	// A protocol with its own (empty) dial candidates turns off the server's
	// default dialling of random discovered nodes: this client dials only
	// the servers it chooses.
	proto.DialCandidates = enode.IterNodes(nil)
	srv := &p2p.Server{Config: p2p.Config{
		PrivateKey:       cfg.PrivateKey,
		Name:             "vflux-client",
		MaxPeers:         10,
		DiscoveryV5:      true,
		BootstrapNodesV5: cfg.Bootnodes,
		Protocols:        []p2p.Protocol{proto},
		DiscAddr:         net.JoinHostPort(listen.String(), "0"),
		// No ListenAddr: a client accepts no inbound connections.
	}}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("client: start p2p: %w", err)
	}
	// The record names the address the socket listens on, so a server that
	// adds the client to its table reaches it there (go-ethereum's fallback is
	// 127.0.0.1 whatever the address); on all interfaces the fallback stays
	// until discovery learns the real one.
	if listen.IsUnspecified() {
		srv.LocalNode().SetFallbackIP(net.IPv4(127, 0, 0, 1))
	} else {
		srv.LocalNode().SetStaticIP(listen)
	}
	return &Client{cfg: cfg, srv: srv, peers: peers}, nil
}

// ListenIPFor returns the address to listen on to reach the given nodes:
// loopback when all of them are on loopback, all interfaces otherwise.
func ListenIPFor(nodes ...*enode.Node) net.IP {
	if len(nodes) == 0 {
		return net.IPv4zero
	}
	for _, n := range nodes {
		if ip := n.IP(); ip == nil || !ip.IsLoopback() {
			return net.IPv4zero
		}
	}
	return net.IPv4(127, 0, 0, 1)
}

// ParseServerNode parses a server's ENR ("enr:...") or enode URL and checks
// that it has a UDP endpoint to send capacity queries to. Its errors wrap
// ErrBadNode.
func ParseServerNode(s string) (*enode.Node, error) {
	n, err := ParseNodeURL(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadNode, err)
	}
	if _, ok := n.UDPEndpoint(); !ok {
		return nil, fmt.Errorf("%w: %s has no IP and UDP port: it answers no capacity queries (discovery off?)", ErrBadNode, n.ID().TerminalString())
	}
	return n, nil
}

// Self is the client's own node record; Self().ID() is what an operator tops
// up.
func (c *Client) Self() *enode.Node { return c.srv.Self() }

// Close stops the client and ends its connections.
func (c *Client) Close() { c.srv.Stop() }

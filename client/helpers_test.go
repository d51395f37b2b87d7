package client_test

import (
	"context"
	"math/big"
	"net"
	"testing"
	"time"

	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/discover"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/clientpool"
	vfnode "github.com/vflux-net/vflux/node"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/protocol"
)

// netTimeout bounds every wait on the network in these tests.
const netTimeout = 10 * time.Second

// testServer is an in-process serving go-ethereum node.
type testServer struct {
	stack *gethnode.Node
	svc   *vfnode.Service
}

func (s *testServer) node() *enode.Node { return s.stack.Server().Self() }

// startServer starts a serving node on 127.0.0.1 with in-memory balances that
// registers with the bootnode boot (nil = none).
func startServer(t *testing.T, cfg vfnode.Config, boot *enode.Node) *testServer {
	t.Helper()
	cfg.Serve = true
	gc := &gethnode.Config{
		Name: "vflux",
		P2P: p2p.Config{
			ListenAddr:  "127.0.0.1:0",
			DiscoveryV5: true,
		},
	}
	if boot != nil {
		gc.P2P.BootstrapNodesV5 = []*enode.Node{boot}
	}
	vfnode.ConfigureP2P(&gc.P2P, cfg, false)
	stack, err := gethnode.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := vfnode.New(stack, cfg)
	if err != nil {
		stack.Close()
		t.Fatal(err)
	}
	if err := stack.Start(); err != nil {
		svc.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Close() })
	return &testServer{stack: stack, svc: svc}
}

// addBalance tops up id on the server, as the operator's addBalance does.
func (s *testServer) addBalance(t *testing.T, id enode.ID, amount int64) {
	t.Helper()
	var err error
	s.svc.Pool().BalanceOperation(id, "", func(op clientpool.AtomicBalanceOperator) {
		_, _, err = op.AddBalance(amount)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// network is three vflux servers and a discv5 bootnode on loopback:
// "cheap" charges a tenth of the default capacity price and has one slot,
// "standard" charges the default and has two slots, and "full" has one slot
// held by a paid client, so it admits nobody for free.
type network struct {
	boot                  *discover.UDPv5
	cheap, standard, full *testServer
}

func startNetwork(t *testing.T) *network {
	t.Helper()
	boot := startBootnode(t)
	bn := boot.Self()

	cheapCfg := serverConfig(1)
	cheapCfg.PosPrices.Capacity /= 10
	cheapCfg.InactiveAllowance = 0 // an evicted free client is dropped at once
	n := &network{boot: boot}
	n.cheap = startServer(t, cheapCfg, bn)
	n.standard = startServer(t, serverConfig(2), bn)
	n.full = startServer(t, serverConfig(1), bn)
	paid := paidClient(t, n.full, 1e12)
	waitCapacity(t, paid, 1)
	return n
}

// startBootnode starts a bare discv5 node on loopback. It names the nodes it
// knows in FINDNODE answers without waiting for its periodic liveness check
// (seconds) to have pinged them: the servers have only just started.
func startBootnode(t *testing.T) *discover.UDPv5 {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	db, err := enode.OpenDB("")
	if err != nil {
		t.Fatal(err)
	}
	key := p2ptest.NewKey(t)
	ln := enode.NewLocalNode(db, key)
	ln.SetStaticIP(net.IPv4(127, 0, 0, 1))
	ln.SetFallbackUDP(conn.LocalAddr().(*net.UDPAddr).Port)
	disc, err := discover.ListenV5(conn, ln, discover.Config{PrivateKey: key, NoFindnodeLivenessCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		disc.Close()
		db.Close()
	})
	return disc
}

// serverConfig is the default configuration with maxClients slots.
func serverConfig(maxClients uint64) vfnode.Config {
	cfg := vfnode.DefaultConfig()
	cfg.MaxClients = maxClients
	cfg.InactiveAllowance = time.Minute
	return cfg
}

// paidClient connects a fresh protocol client to s after funding it.
func paidClient(t *testing.T, s *testServer, tokens int64) *protocol.Client {
	t.Helper()
	peers := protocol.NewClientPeers()
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{
		Protocols: []p2p.Protocol{peers.Protocol()}, NoDiscovery: true, NoListen: true,
	})
	s.addBalance(t, srv.Self().ID(), tokens)
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	cl, err := peers.Dial(ctx, srv, s.node())
	if err != nil {
		t.Fatalf("paid client dial: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitCapacity waits until cl holds at least min capacity.
func waitCapacity(t *testing.T, cl *protocol.Client, min uint64) {
	t.Helper()
	deadline := time.After(netTimeout)
	for cl.Capacity() < min {
		select {
		case <-cl.Updates():
		case <-cl.Done():
			t.Fatalf("client disconnected: %v", cl.DisconnectReason())
		case <-deadline:
			t.Fatalf("capacity %d after %v, want at least %d", cl.Capacity(), netTimeout, min)
		}
	}
}

// newClient starts a client library endpoint on loopback with a fresh key.
func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.PrivateKey == nil {
		cfg.PrivateKey = p2ptest.NewKey(t)
	}
	cfg.ListenIP = net.IPv4(127, 0, 0, 1)
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func bigs(vs ...int64) []*big.Int {
	out := make([]*big.Int, len(vs))
	for i, v := range vs {
		out[i] = big.NewInt(v)
	}
	return out
}

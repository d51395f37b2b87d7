package node

import (
	"context"
	"strings"
	"testing"
	"time"

	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/protocol"
)

// netTimeout bounds every wait on the network in these tests.
const netTimeout = 10 * time.Second

type testNode struct {
	stack *gethnode.Node
	svc   *Service
	api   *RPCClient
}

// startNode starts a serving go-ethereum node on 127.0.0.1 with a random
// port; datadir "" means in-memory balances.
func startNode(t *testing.T, cfg Config, datadir string, noDiscovery bool) *testNode {
	t.Helper()
	return startNodeWith(t, cfg, datadir, noDiscovery, nil)
}

// startNodeWith is startNode with a hook that runs between New and the
// stack's Start (to set a test logger or hook on the service).
func startNodeWith(t *testing.T, cfg Config, datadir string, noDiscovery bool, beforeStart func(*Service)) *testNode {
	t.Helper()
	cfg.Serve = true
	gc := &gethnode.Config{
		Name:    "vflux",
		DataDir: datadir,
		P2P: p2p.Config{
			ListenAddr:  "127.0.0.1:0",
			NoDiscovery: noDiscovery,
			DiscoveryV5: !noDiscovery,
		},
	}
	ConfigureP2P(&gc.P2P, cfg, false)
	stack, err := gethnode.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(stack, cfg)
	if err != nil {
		stack.Close()
		t.Fatal(err)
	}
	if beforeStart != nil {
		beforeStart(svc)
	}
	if err := stack.Start(); err != nil {
		svc.Stop()
		t.Fatal(err)
	}
	rpcClient := NewRPCClient(stack.Attach())
	t.Cleanup(func() {
		rpcClient.Close()
		stack.Close()
	})
	return &testNode{stack: stack, svc: svc, api: rpcClient}
}

// testConfig is DefaultConfig with a long inactive allowance, so waiting
// clients stay connected for the whole test.
func testConfig(maxClients uint64) Config {
	cfg := DefaultConfig()
	cfg.MaxClients = maxClients
	cfg.InactiveAllowance = time.Minute
	return cfg
}

type testClient struct {
	srv *p2p.Server
	cl  *protocol.Client
}

// dialClient starts a client p2p server and connects it to the node.
func dialClient(t *testing.T, n *testNode) (*testClient, error) {
	t.Helper()
	return dialClientTimeout(t, n, netTimeout)
}

// clientServer is a client's p2p server with the vfx client side on it.
type clientServer struct {
	*p2p.Server
	peers *protocol.ClientPeers
}

// newClientKey starts a client p2p server (its node ID is known before it
// connects, so a test can fund it first).
func newClientKey(t *testing.T) (*clientServer, error) {
	t.Helper()
	peers := protocol.NewClientPeers()
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{
		Protocols:   []p2p.Protocol{peers.Protocol()},
		NoDiscovery: true,
		NoListen:    true,
	})
	return &clientServer{Server: srv, peers: peers}, nil
}

func dialWith(t *testing.T, n *testNode, cs *clientServer) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	cl, err := cs.peers.Dial(ctx, cs.Server, n.stack.Server().Self())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(cl.Close)
	return &testClient{srv: cs.Server, cl: cl}
}

func dialClientTimeout(t *testing.T, n *testNode, timeout time.Duration) (*testClient, error) {
	t.Helper()
	cs, _ := newClientKey(t)
	peers, srv := cs.peers, cs.Server
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl, err := peers.Dial(ctx, srv, n.stack.Server().Self())
	if err != nil {
		return &testClient{srv: srv}, err
	}
	t.Cleanup(cl.Close)
	return &testClient{srv: srv, cl: cl}, nil
}

func mustDial(t *testing.T, n *testNode) *testClient {
	t.Helper()
	c, err := dialClient(t, n)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// waitCapacity waits until the client's capacity is want.
func waitCapacity(t *testing.T, c *testClient, want uint64) {
	t.Helper()
	deadline := time.After(netTimeout)
	for c.cl.Capacity() != want {
		select {
		case <-c.cl.Updates():
		case <-c.cl.Done():
			t.Fatalf("client disconnected (%v) while waiting for capacity %d", c.cl.DisconnectReason(), want)
		case <-deadline:
			t.Fatalf("capacity is %d after %v, want %d", c.cl.Capacity(), netTimeout, want)
		}
	}
}

// eventually polls cond until it holds or the network timeout passes; for
// state that only changes on another goroutine without a notification.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(netTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func deadline() <-chan time.Time { return time.After(netTimeout) }

// containsErr reports whether err's message contains target's: errors that
// crossed the RPC boundary keep only their text.
func containsErr(err, target error) bool {
	return err != nil && strings.Contains(err.Error(), target.Error())
}

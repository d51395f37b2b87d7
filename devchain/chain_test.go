package devchain

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/crypto"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/p2ptest"
)

const testTimeout = 30 * time.Second

// startDevNode runs a stack with the dev chain on 127.0.0.1, p2p and
// discovery on, and closes it at cleanup.
func startDevNode(t *testing.T, datadir string, period uint64) (*gethnode.Node, *Chain) {
	t.Helper()
	stack, err := gethnode.New(&gethnode.Config{
		Name:    "vflux",
		DataDir: datadir,
		P2P: p2p.Config{
			ListenAddr:  "127.0.0.1:0",
			DiscoveryV5: true,
			MaxPeers:    10,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := Register(stack, Config{Period: period})
	if err != nil {
		stack.Close()
		t.Fatal(err)
	}
	if err := stack.Start(); err != nil {
		stack.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Close() })
	return stack, chain
}

// waitForBlock waits until the chain's head is at least number.
func waitForBlock(t *testing.T, chain *Chain, number uint64) {
	t.Helper()
	heads := make(chan core.ChainHeadEvent, 16)
	sub := chain.Eth().BlockChain().SubscribeChainHeadEvent(heads)
	defer sub.Unsubscribe()
	deadline := time.After(testTimeout)
	for chain.Head().Number.Uint64() < number {
		select {
		case <-heads:
		case <-deadline:
			t.Fatalf("head still at %d after %v, want %d", chain.Head().Number, testTimeout, number)
		}
	}
}

func TestTheDevChainSealsEmptyBlocksAndServesThemOverEth(t *testing.T) {
	stack, chain := startDevNode(t, t.TempDir(), 1)
	if stack.Server().DiscoveryV5() == nil || stack.Server().ListenAddr == "" {
		t.Fatal("p2p is not listening with discovery on")
	}
	// No transaction is ever sent: blocks must still come.
	waitForBlock(t, chain, 2)

	cc, err := NewClientChain(chain.Genesis())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cp := cc.NewPeers()
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{Protocols: cp.Protocols(), NoDiscovery: true, NoListen: true})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	peer, err := cp.Dial(ctx, srv, stack.Server().Self())
	if err != nil {
		t.Fatal(err)
	}
	headers, err := peer.Headers(ctx, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(headers) != 3 {
		t.Fatalf("got %d headers, want 3", len(headers))
	}
	for i, h := range headers {
		local := chain.Eth().BlockChain().GetHeaderByNumber(uint64(i))
		if h.Hash() != local.Hash() {
			t.Errorf("header %d: hash %x, the server's chain has %x", i, h.Hash(), local.Hash())
		}
	}
	n, err := peer.Bodies(ctx, []common.Hash{headers[1].Hash(), headers[2].Hash()})
	if err != nil || n != 2 {
		t.Fatalf("bodies: got %d, %v; want 2", n, err)
	}
	if peer.Received() == 0 {
		t.Error("no bytes counted")
	}
	// admin_nodeInfo lists eth (what geth shows) and snap.
	info := stack.Server().NodeInfo()
	for _, name := range []string{"eth", "snap"} {
		if info.Protocols[name] == nil {
			t.Errorf("node info has no %q protocol: %v", name, info.Protocols)
		}
	}
}

func TestTheDevChainResumesFromItsDatadir(t *testing.T) {
	dir := t.TempDir()
	stack, chain := startDevNode(t, dir, 1)
	waitForBlock(t, chain, 2)
	genesis := chain.Eth().BlockChain().Genesis().Hash()
	addr := chain.Address()
	if err := stack.Close(); err != nil {
		t.Fatal(err)
	}
	head := chain.Head().Number.Uint64()

	_, chain2 := startDevNode(t, dir, 1)
	if got := chain2.Eth().BlockChain().Genesis().Hash(); got != genesis {
		t.Fatalf("genesis changed across the restart: %x, was %x", got, genesis)
	}
	if chain2.Address() != addr {
		t.Fatalf("dev account changed across the restart: %x, was %x", chain2.Address(), addr)
	}
	if got := chain2.Head().Number.Uint64(); got < head {
		t.Fatalf("head went back from %d to %d", head, got)
	}
	waitForBlock(t, chain2, head+1)
}

func TestAChainWithoutItsDevKeyIsAClearError(t *testing.T) {
	dir := t.TempDir()
	stack, chain := startDevNode(t, dir, 1)
	waitForBlock(t, chain, 1)
	stack.Close()
	if err := os.Remove(filepath.Join(dir, "vflux", KeyFileName)); err != nil {
		t.Fatal(err)
	}
	stack2, err := gethnode.New(&gethnode.Config{Name: "vflux", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer stack2.Close()
	_, err = Register(stack2, Config{Period: 1})
	if err == nil || !strings.Contains(err.Error(), "no dev key") {
		t.Fatalf("Register without the dev key: %v, want an error naming the missing key", err)
	}
}

func TestAZeroPeriodIsRefused(t *testing.T) {
	stack, err := gethnode.New(&gethnode.Config{Name: "vflux"})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	if _, err := Register(stack, Config{Period: 0}); err == nil {
		t.Fatal("a zero period was accepted")
	}
}

func TestRequestsGivenUpHalfwayDoNotStallTheConnection(t *testing.T) {
	stack, chain := startDevNode(t, t.TempDir(), 1)
	waitForBlock(t, chain, 1)
	cc, err := NewClientChain(chain.Genesis())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cp := cc.NewPeers()
	key, _ := crypto.GenerateKey()
	srv := &p2p.Server{Config: p2p.Config{PrivateKey: key, MaxPeers: 1, NoDiscovery: true, Protocols: cp.Protocols()}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// A stalled message loop would keep Stop waiting forever: fail instead.
	defer func() {
		stopped := make(chan struct{})
		go func() { srv.Stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(testTimeout):
			t.Error("the client's p2p server did not stop: its eth message loop is stalled")
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	peer, err := cp.Dial(ctx, srv, stack.Server().Self())
	if err != nil {
		t.Fatal(err)
	}
	// Give up on requests at every point of their way (before they are
	// sent, while they are served, as the answer is delivered): clients
	// that download back to back and stop at some moment.
	for round := 0; round < 40; round++ {
		rctx, rcancel := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			for rctx.Err() == nil {
				peer.Headers(rctx, 0, 2)
			}
		}()
		time.AfterFunc(time.Duration(round%10)*time.Millisecond, rcancel)
		<-stopped
	}
	// The connection still answers.
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	if _, err := peer.Headers(rctx, 0, 2); err != nil {
		t.Fatalf("after abandoned requests: %v", err)
	}
}

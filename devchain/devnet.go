package devchain

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

const (
	// downloadBatch is how many headers (and then bodies) a devnet client
	// asks for at once.
	downloadBatch = 64
	// handshakeWait bounds the wait for a devnet client's eth handshake.
	handshakeWait = 10 * time.Second
	// transfersPerBlock is how many transfers the devnet puts in every block,
	// so that bodies have something to download.
	transfersPerBlock = 20
)

// Workload is the devnet's eth traffic (a node.DevnetWorkload): the devnet
// server runs the dev chain with transfersPerBlock transfers in every block,
// and every client downloads its headers and bodies over go-ethereum's eth
// protocol, one request at a time and as fast as the server serves them,
// from the genesis to the head and round again.
type Workload struct {
	cfg   Config
	chain *Chain
	cc    *ClientChain
}

// NewWorkload returns the workload of a devnet whose server runs a dev chain
// with this config. Close it after the devnet ends.
func NewWorkload(cfg Config) *Workload { return &Workload{cfg: cfg} }

// Name heads the devnet view's column of served KiB/s ("ETH KIB/S").
func (w *Workload) Name() string { return "eth" }

// Setup registers the dev chain on the devnet server's stack.
func (w *Workload) Setup(stack *gethnode.Node) error {
	chain, err := Register(stack, w.cfg)
	if err != nil {
		return err
	}
	stack.RegisterLifecycle(newTxFiller(chain, transfersPerBlock))
	cc, err := NewClientChain(chain.Genesis())
	if err != nil {
		return err
	}
	w.chain, w.cc = chain, cc
	return nil
}

// Chain is the dev chain the server runs (nil before Setup).
func (w *Workload) Chain() *Chain { return w.chain }

// Close stops the clients' local chain.
func (w *Workload) Close() {
	if w.cc != nil {
		w.cc.Close()
	}
}

// Client returns the eth protocols of one client connection and its download
// loop.
func (w *Workload) Client() ([]p2p.Protocol, func(context.Context, enode.ID, *atomic.Uint64)) {
	peers := w.cc.NewPeers()
	return peers.Protocols(), func(ctx context.Context, server enode.ID, served *atomic.Uint64) {
		download(ctx, peers, server, served)
	}
}

// download fetches headers and bodies from server until ctx ends or the
// connection does, adding what it reads to served.
func download(ctx context.Context, peers *ClientPeers, server enode.ID, served *atomic.Uint64) {
	wctx, cancel := context.WithTimeout(ctx, handshakeWait)
	peer, err := peers.Wait(wctx, server)
	cancel()
	if err != nil {
		return
	}
	var next, counted uint64
	for {
		headers, err := peer.Headers(ctx, next, downloadBatch)
		if err != nil {
			return
		}
		hashes := make([]common.Hash, len(headers))
		for i, h := range headers {
			hashes[i] = h.Hash()
		}
		if len(hashes) > 0 {
			if _, err := peer.Bodies(ctx, hashes); err != nil {
				return
			}
		}
		if len(headers) < downloadBatch {
			next = 0 // reached the head: round again
		} else {
			next += downloadBatch
		}
		got := peer.Received()
		served.Add(got - counted)
		counted = got
	}
}

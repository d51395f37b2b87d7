package devchain

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	ethproto "github.com/ethereum/go-ethereum/eth/protocols/eth"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// ErrPeerGone is returned by the requests of a peer whose connection ended.
var ErrPeerGone = errors.New("eth peer disconnected")

// ClientChain is what the client side of go-ethereum's eth protocol needs of
// its own chain: a local chain that holds only the genesis (the server's
// status must match it, and whatever the server asks for is served from
// it). One ClientChain serves the ClientPeers of many clients.
type ClientChain struct {
	chain   *core.BlockChain
	network uint64
}

// NewClientChain makes the local chain for the chain with this genesis.
// Close it when its clients are done.
func NewClientChain(genesis *core.Genesis) (*ClientChain, error) {
	db := rawdb.NewMemoryDatabase()
	config, _, err := core.LoadChainConfig(db, genesis)
	if err != nil {
		return nil, fmt.Errorf("eth client: %w", err)
	}
	engine, err := ethconfig.CreateConsensusEngine(config, db)
	if err != nil {
		return nil, fmt.Errorf("eth client: %w", err)
	}
	chain, err := core.NewBlockChain(db, genesis, engine, core.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("eth client: %w", err)
	}
	return &ClientChain{chain: chain, network: config.ChainID.Uint64()}, nil
}

// Close stops the local chain.
func (cc *ClientChain) Close() { cc.chain.Stop() }

// NewPeers returns the client side for one p2p.Server.
func (cc *ClientChain) NewPeers() *ClientPeers {
	return &ClientPeers{
		chain:   cc.chain,
		network: cc.network,
		peers:   make(map[enode.ID]*Peer),
		waiting: make(map[enode.ID][]chan waitResult),
	}
}

// ClientPeers runs the client side of go-ethereum's eth protocol (every
// version it speaks) on one in-process p2p.Server: go-ethereum's own
// handshake, requests and message handling. Add Protocols to the server's
// config, then Dial or Wait for a peer.
type ClientPeers struct {
	chain   *core.BlockChain
	network uint64

	mu      sync.Mutex
	peers   map[enode.ID]*Peer
	waiting map[enode.ID][]chan waitResult
}

type waitResult struct {
	peer *Peer
	err  error
}

// Protocols returns go-ethereum's eth protocols, run by this client: every
// message read is counted in its peer's Received.
func (cp *ClientPeers) Protocols() []p2p.Protocol {
	protos := ethproto.MakeProtocols((*clientBackend)(cp), cp.network, nil)
	for i := range protos {
		run := protos[i].Run
		protos[i].Run = func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
			peer := &Peer{done: make(chan struct{})}
			cp.mu.Lock()
			cp.peers[p.ID()] = peer
			cp.mu.Unlock()
			defer func() {
				cp.mu.Lock()
				if cp.peers[p.ID()] == peer {
					delete(cp.peers, p.ID())
				}
				cp.mu.Unlock()
				close(peer.done)
			}()
			return run(p, &countingRW{MsgReadWriter: rw, n: &peer.received})
		}
		protos[i].DialCandidates = nil
	}
	return protos
}

// Dial connects srv to node and waits until the eth handshake is done.
func (cp *ClientPeers) Dial(ctx context.Context, srv *p2p.Server, node *enode.Node) (*Peer, error) {
	srv.AddPeer(node)
	return cp.Wait(ctx, node.ID())
}

// Wait waits until the eth handshake with the peer id is done (it may have
// happened already) and returns the peer.
func (cp *ClientPeers) Wait(ctx context.Context, id enode.ID) (*Peer, error) {
	ch := make(chan waitResult, 1)
	cp.mu.Lock()
	if p := cp.peers[id]; p != nil && p.eth != nil {
		cp.mu.Unlock()
		return p, nil
	}
	cp.waiting[id] = append(cp.waiting[id], ch)
	cp.mu.Unlock()
	select {
	case r := <-ch:
		return r.peer, r.err
	case <-ctx.Done():
		cp.mu.Lock()
		w := cp.waiting[id]
		for i := range w {
			if w[i] == ch {
				cp.waiting[id] = append(w[:i:i], w[i+1:]...)
				break
			}
		}
		if len(cp.waiting[id]) == 0 {
			delete(cp.waiting, id)
		}
		cp.mu.Unlock()
		return nil, fmt.Errorf("eth handshake with %s: %w", id.TerminalString(), ctx.Err())
	}
}

// handshaken records the outcome of a peer's handshake and wakes its waiters.
func (cp *ClientPeers) handshaken(id enode.ID, ep *ethproto.Peer, err error) *Peer {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	p := cp.peers[id]
	r := waitResult{err: err}
	if err == nil {
		p.eth = ep
		r.peer = p
	} else {
		r.err = fmt.Errorf("eth handshake with %s: %w", id.TerminalString(), err)
	}
	for _, ch := range cp.waiting[id] {
		ch <- r
	}
	delete(cp.waiting, id)
	return p
}

// Peer is a server connected over eth.
type Peer struct {
	eth      *ethproto.Peer // set once the handshake is done, before waiters see the peer
	received atomic.Uint64
	done     chan struct{}
}

// Received is the number of message payload bytes read from the peer.
func (p *Peer) Received() uint64 { return p.received.Load() }

// Done is closed when the connection ends.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Head is the number of the newest block the server announced (in its
// status or a later BlockRangeUpdate).
func (p *Peer) Head() uint64 {
	if r := p.eth.BlockRange(); r != nil {
		return r.LatestBlock
	}
	return 0
}

// Headers fetches amount headers from number from (fewer if the chain ends
// before).
func (p *Peer) Headers(ctx context.Context, from uint64, amount int) ([]*types.Header, error) {
	sink := make(chan *ethproto.Response)
	req, err := p.eth.RequestHeadersByNumber(from, amount, 0, false, sink)
	if err != nil {
		return nil, err
	}
	res, err := p.await(ctx, req, sink)
	if err != nil {
		return nil, err
	}
	return *res.Res.(*ethproto.BlockHeadersRequest), nil
}

// Bodies fetches the bodies of the blocks with these hashes and returns how
// many the server sent.
func (p *Peer) Bodies(ctx context.Context, hashes []common.Hash) (int, error) {
	sink := make(chan *ethproto.Response)
	req, err := p.eth.RequestBodies(hashes, sink)
	if err != nil {
		return 0, err
	}
	res, err := p.await(ctx, req, sink)
	if err != nil {
		return 0, err
	}
	return len(*res.Res.(*ethproto.BlockBodiesResponse)), nil
}

// await waits for the answer to req. The sink must be unbuffered: go-ethereum's
// message loop, once it has put a response into the sink, waits for its Done
// signal, so a response buffered in a sink that nobody reads any more would
// stall the connection's message loop (and its shutdown) forever. Unbuffered,
// a response to a request given up here meets the request's cancellation.
func (p *Peer) await(ctx context.Context, req *ethproto.Request, sink chan *ethproto.Response) (*ethproto.Response, error) {
	select {
	case res := <-sink:
		res.Done <- nil
		return res, nil
	case <-ctx.Done():
		req.Close()
		return nil, ctx.Err()
	case <-p.done:
		return nil, ErrPeerGone
	}
}

// countingRW counts the payload bytes of the messages read.
type countingRW struct {
	p2p.MsgReadWriter
	n *atomic.Uint64
}

func (rw *countingRW) ReadMsg() (p2p.Msg, error) {
	msg, err := rw.MsgReadWriter.ReadMsg()
	if err == nil {
		rw.n.Add(uint64(msg.Size))
	}
	return msg, err
}

// clientBackend is the eth protocol's Backend of a client: it serves the
// genesis-only chain, has no transactions and takes none.
type clientBackend ClientPeers

func (b *clientBackend) Chain() *core.BlockChain     { return b.chain }
func (b *clientBackend) TxPool() ethproto.TxPool     { return noTxs{} }
func (b *clientBackend) BlobPool() ethproto.BlobPool { return noTxs{} }
func (b *clientBackend) AcceptTxs() bool             { return false }
func (b *clientBackend) PeerInfo(enode.ID) any       { return nil }

// Handle drops what the server sends unasked (transaction announcements).
func (b *clientBackend) Handle(*ethproto.Peer, ethproto.Packet) error { return nil }

// RunPeer runs go-ethereum's eth handshake as a client that has only the
// genesis, then hands the peer to the protocol's message loop.
func (b *clientBackend) RunPeer(peer *ethproto.Peer, handler ethproto.Handler) error {
	cp := (*ClientPeers)(b)
	genesis := cp.chain.Genesis()
	err := peer.Handshake(cp.network, cp.chain, ethproto.BlockRangeUpdatePacket{
		EarliestBlock: 0, LatestBlock: 0, LatestBlockHash: genesis.Hash(),
	})
	cp.handshaken(peer.Peer.ID(), peer, err)
	if err != nil {
		return err
	}
	return handler(peer)
}

// noTxs is an empty transaction and blob pool.
type noTxs struct{}

func (noTxs) Get(common.Hash) *types.Transaction          { return nil }
func (noTxs) GetRLP(common.Hash, uint) []byte             { return nil }
func (noTxs) GetMetadata(common.Hash) *txpool.TxMetadata  { return nil }
func (noTxs) GetBlobHashes(common.Hash) []common.Hash     { return nil }
func (noTxs) GetCustody(common.Hash) *types.CustodyBitmap { return nil }
func (noTxs) Has(common.Hash) bool                        { return false }
func (noTxs) GetBlobCells([]common.Hash, types.CustodyBitmap) ([][]*kzg4844.Cell, [][]*kzg4844.Proof, error) {
	return nil, nil, nil
}

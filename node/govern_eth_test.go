package node

import (
	"context"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/beacon"
	"github.com/ethereum/go-ethereum/consensus/ethash"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	ethproto "github.com/ethereum/go-ethereum/eth/protocols/eth"
	"github.com/ethereum/go-ethereum/eth/protocols/snap"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	gethparams "github.com/ethereum/go-ethereum/params"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/protocol"
)

// The eth tests run go-ethereum's real eth protocol over RLPx on 127.0.0.1: a
// server node built with eth.New serving a generated chain, governed by
// vflux, and clients that are p2p.Servers running go-ethereum's eth handshake
// and header and body requests.

const (
	testNetworkID = 1337
	testChainLen  = 2000
	// headersPerRequest keeps one reply small (~4 KiB, ~500 cost units) next
	// to the rates measured, so one reply charged at once is noise.
	headersPerRequest = 8
)

var (
	testChainOnce sync.Once
	testGenesis   *core.Genesis
	testBlocks    []*types.Block
)

// testChain returns a post-merge (Shanghai) genesis and testChainLen empty
// blocks on it, generated once per test binary.
func testChain() (*core.Genesis, []*types.Block) {
	testChainOnce.Do(func() {
		zero := uint64(0)
		cfg := &gethparams.ChainConfig{
			ChainID:                 big.NewInt(testNetworkID),
			HomesteadBlock:          big.NewInt(0),
			EIP150Block:             big.NewInt(0),
			EIP155Block:             big.NewInt(0),
			EIP158Block:             big.NewInt(0),
			ByzantiumBlock:          big.NewInt(0),
			ConstantinopleBlock:     big.NewInt(0),
			PetersburgBlock:         big.NewInt(0),
			IstanbulBlock:           big.NewInt(0),
			MuirGlacierBlock:        big.NewInt(0),
			BerlinBlock:             big.NewInt(0),
			LondonBlock:             big.NewInt(0),
			ArrowGlacierBlock:       big.NewInt(0),
			GrayGlacierBlock:        big.NewInt(0),
			MergeNetsplitBlock:      big.NewInt(0),
			ShanghaiTime:            &zero,
			TerminalTotalDifficulty: big.NewInt(0),
			Ethash:                  new(gethparams.EthashConfig),
		}
		testGenesis = &core.Genesis{Config: cfg, Difficulty: common.Big0, GasLimit: 30_000_000, BaseFee: big.NewInt(gethparams.InitialBaseFee)}
		_, testBlocks, _ = core.GenerateChainWithGenesis(testGenesis, beacon.New(ethash.NewFaker()), testChainLen, nil)
	})
	return testGenesis, testBlocks
}

// startEthNode starts a serving node with go-ethereum's eth service (full
// sync) holding the test chain, governed by vflux for govern.
func startEthNode(t testing.TB, cfg Config, govern ...string) *testNode {
	t.Helper()
	return startEthNodeWith(t, cfg, nil, govern...)
}

// startEthNodeWith is startEthNode with a change to the p2p config (after
// ConfigureP2P).
func startEthNodeWith(t testing.TB, cfg Config, p2pConfig func(*p2p.Config), govern ...string) *testNode {
	t.Helper()
	cfg.Serve = true
	cfg.Govern = govern
	gc := &gethnode.Config{
		Name:    "vflux-eth",
		DataDir: t.TempDir(),
		P2P:     p2p.Config{ListenAddr: "127.0.0.1:0", NoDiscovery: true},
	}
	ConfigureP2P(&gc.P2P, cfg, false)
	if p2pConfig != nil {
		p2pConfig(&gc.P2P)
	}
	stack, err := gethnode.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Close() })
	genesis, blocks := testChain()
	ec := ethconfig.Defaults
	ec.Genesis = genesis
	ec.NetworkId = testNetworkID
	ec.SyncMode = ethconfig.FullSync
	ec.TxPool.Journal = ""
	backend, err := eth.New(stack, &ec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backend.BlockChain().InsertChain(blocks); err != nil {
		t.Fatal(err)
	}
	svc, err := New(stack, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.Start(); err != nil {
		t.Fatal(err)
	}
	rpcClient := NewRPCClient(stack.Attach())
	t.Cleanup(rpcClient.Close)
	return &testNode{stack: stack, svc: svc, api: rpcClient}
}

// Short names for go-ethereum's eth protocol types in these tests.
type (
	ethPeer         = ethproto.Peer
	ethPeerResponse = ethproto.Response
	ethHeaders      = ethproto.BlockHeadersRequest
)

// ethClient is a client p2p.Server running go-ethereum's eth protocol (and
// vfx/1 when asked) against a chain holding only the genesis block.
type ethClient struct {
	srv   *p2p.Server
	vfx   *protocol.ClientPeers
	chain *core.BlockChain
	peers chan *ethproto.Peer // handshaken eth peers
	// served counts the header and body bytes this client received.
	received atomic.Int64
}

// newEthClient starts a client; withVfx adds the vfx/1 client side.
func newEthClient(t testing.TB, withVfx bool) *ethClient {
	t.Helper()
	return newEthClientWith(t, ethClientOptions{vfx: withVfx})
}

// ethClientOptions choose what a test client runs besides eth.
type ethClientOptions struct {
	vfx    bool // the vfx/1 client side
	snap   bool // go-ethereum's snap protocol (it only answers)
	listen bool // listen on 127.0.0.1 (to be dialed)
}

// newEthClientWith is newEthClient with options.
func newEthClientWith(t testing.TB, opts ethClientOptions) *ethClient {
	t.Helper()
	genesis, _ := testChain()
	chain, err := core.NewBlockChain(rawdb.NewMemoryDatabase(), genesis, beacon.New(ethash.NewFaker()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Stop)
	c := &ethClient{chain: chain, peers: make(chan *ethproto.Peer, 4)}
	protos := ethproto.MakeProtocols(clientBackend{c}, testNetworkID, nil)
	if opts.snap {
		protos = append(protos, snap.MakeProtocols(snapBackend{c}, false)...)
	}
	if opts.vfx {
		c.vfx = protocol.NewClientPeers()
		protos = append(protos, c.vfx.Protocol())
	}
	c.srv = p2ptest.StartServer(t, p2ptest.ServerConfig{Protocols: protos, NoDiscovery: true, NoListen: !opts.listen})
	return c
}

// id is the client's node ID.
func (c *ethClient) id() enode.ID { return c.srv.Self().ID() }

// connect dials n and returns the handshaken eth peer (and the vfx/1 client
// when the client runs it).
func (c *ethClient) connect(t testing.TB, n *testNode) (*ethproto.Peer, *protocol.Client) {
	t.Helper()
	var cl *protocol.Client
	if c.vfx != nil {
		ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
		defer cancel()
		var err error
		if cl, err = c.vfx.Dial(ctx, c.srv, n.stack.Server().Self()); err != nil {
			t.Fatalf("vfx dial: %v", err)
		}
		t.Cleanup(cl.Close)
	} else {
		c.srv.AddPeer(n.stack.Server().Self())
	}
	select {
	case p := <-c.peers:
		return p, cl
	case <-deadline():
		t.Fatal("no eth handshake")
		return nil, nil
	}
}

// download requests headers and bodies from p back to back until ctx ends or
// the peer goes; it returns why it stopped.
func (c *ethClient) download(ctx context.Context, p *ethproto.Peer) error {
	_, blocks := testChain()
	next := uint64(1)
	for i := 0; ; i++ {
		// Unbuffered: eth's reader waits for Done once a response is
		// delivered, so a response must never sit where nobody takes it.
		sink := make(chan *ethproto.Response)
		var req *ethproto.Request
		var err error
		if i%2 == 0 {
			req, err = p.RequestHeadersByNumber(next, headersPerRequest, 0, false, sink)
		} else {
			hashes := make([]common.Hash, headersPerRequest)
			for j := range hashes {
				hashes[j] = blocks[(int(next)+j-1)%len(blocks)].Hash()
			}
			req, err = p.RequestBodies(hashes, sink)
		}
		if err != nil {
			return err
		}
		select {
		case res := <-sink:
			switch r := res.Res.(type) {
			case *ethproto.BlockHeadersRequest:
				for _, h := range *r {
					c.received.Add(int64(h.Size()))
				}
			case *ethproto.BlockBodiesResponse:
				c.received.Add(int64(len(*r)))
			}
			res.Done <- nil // eth's reader waits for this, whatever else happens
		case <-ctx.Done():
			req.Close()
			return ctx.Err()
		}
		req.Close()
		if next += headersPerRequest; next+headersPerRequest > testChainLen {
			next = 1
		}
	}
}

// clientBackend is the eth protocol backend of a test client: a genesis-only
// chain, an empty transaction pool, and RunPeer doing the eth handshake.
type clientBackend struct{ c *ethClient }

func (b clientBackend) Chain() *core.BlockChain     { return b.c.chain }
func (b clientBackend) TxPool() ethproto.TxPool     { return emptyTxPool{} }
func (b clientBackend) BlobPool() ethproto.BlobPool { return emptyTxPool{} }
func (b clientBackend) AcceptTxs() bool             { return false }
func (b clientBackend) PeerInfo(enode.ID) any       { return nil }
func (b clientBackend) Handle(*ethproto.Peer, ethproto.Packet) error {
	return nil
}

func (b clientBackend) RunPeer(p *ethproto.Peer, handler ethproto.Handler) error {
	g := b.c.chain.Genesis()
	if err := p.Handshake(testNetworkID, b.c.chain, ethproto.BlockRangeUpdatePacket{LatestBlockHash: g.Hash()}); err != nil {
		return err
	}
	select {
	case b.c.peers <- p:
	default:
	}
	return handler(p)
}

// snapBackend is the snap protocol backend of a test client: it runs the
// protocol's message loop and serves nothing of interest.
type snapBackend struct{ c *ethClient }

func (b snapBackend) Chain() *core.BlockChain                          { return b.c.chain }
func (b snapBackend) RunPeer(p *snap.Peer, handler snap.Handler) error { return handler(p) }
func (b snapBackend) PeerInfo(enode.ID) any                            { return nil }
func (b snapBackend) Handle(*snap.Peer, snap.Packet) error             { return nil }

type emptyTxPool struct{}

func (emptyTxPool) Get(common.Hash) *types.Transaction          { return nil }
func (emptyTxPool) GetRLP(common.Hash, uint) []byte             { return nil }
func (emptyTxPool) GetMetadata(common.Hash) *txpool.TxMetadata  { return nil }
func (emptyTxPool) GetBlobHashes(common.Hash) []common.Hash     { return nil }
func (emptyTxPool) GetCustody(common.Hash) *types.CustodyBitmap { return nil }
func (emptyTxPool) Has(common.Hash) bool                        { return false }
func (emptyTxPool) GetBlobCells([]common.Hash, types.CustodyBitmap) ([][]*kzg4844.Cell, [][]*kzg4844.Proof, error) {
	return nil, nil, nil
}

package node

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
)

// endlessSource is a connection that always has the same 64-byte request and
// swallows what is written.
type endlessSource struct{ payload *bytes.Reader }

func (e *endlessSource) ReadMsg() (p2p.Msg, error) {
	return p2p.Msg{Code: 3, Size: 64, Payload: e.payload}, nil
}
func (e *endlessSource) WriteMsg(p2p.Msg) error { return nil }

// registeredFlow is the governed flow of a client registered with a real pool
// (in memory) at a capacity so high its buffer never runs dry.
func registeredFlow(tb testing.TB, queueBytes int, costs ...MessageCost) *flow {
	tb.Helper()
	pool := clientpool.NewClientPool(memorydb.New(), 1<<40, 0, mclock.System{}, func() bool { return true })
	pool.SetLimits(1, 1<<40)
	pool.SetDefaultFactors(clientpool.PriceFactors{RequestFactor: 1}, clientpool.PriceFactors{RequestFactor: 1})
	pool.Start()
	tb.Cleanup(pool.Stop)
	reg := newClientRegistry(pool, time.Minute, flowConfig{
		clock: mclock.System{}, minCap: 1 << 40, costBase: params.RequestCostBase,
		costPerKB: params.RequestCostPerKB, bufferSecs: params.BufferSecs, queueBytes: queueBytes,
		costs: codeCosts(costs),
	})
	key, _ := crypto.GenerateKey()
	n := enode.NewV4(&key.PublicKey, nil, 0, 0)
	c := reg.attach(n, nil, n.ID().String(), nil, "eth/69")
	if c == nil {
		tb.Fatal("not registered")
	}
	return c.flow
}

// BenchmarkGovernedMessage is the governing wrapper's cost for one metered
// request: the pump holds it, ReadMsg admits it against the buffer and
// charges the balance (RequestServed), and a 512-byte reply is charged on
// WriteMsg. The capacity is so high the buffer never runs dry.
func BenchmarkGovernedMessage(b *testing.B) {
	f := registeredFlow(b, governQueueBytes)
	st := f.newStream("eth", &endlessSource{payload: bytes.NewReader(make([]byte, 64))})
	go st.pump()
	defer st.end()
	reply := p2p.Msg{Code: 4, Size: 512, Payload: bytes.NewReader(nil)}
	for i := 0; i < 2; i++ { // the handshake pair passes unmetered
		st.ReadMsg()
		st.WriteMsg(reply)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg, err := st.ReadMsg()
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, msg.Payload)
		st.WriteMsg(reply)
	}
}

// BenchmarkGovernedEthDownload is a paid client downloading headers and bodies
// over go-ethereum's eth protocol at capacity 3*minCap for 2 s after its
// buffer is spent: it reports the served cost per second against the
// capacity, and the bytes per second.
func BenchmarkGovernedEthDownload(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchEthDownload(b)
	}
}

func benchEthDownload(b *testing.B) {
	const paidCap = 3 * govMinCap
	n := startEthNode(b, governConfig(1, paidCap), "eth", "snap")
	api := &API{s: n.svc}
	paid := newEthClient(b, false)
	if _, err := api.AddBalance(paid.id().String(), Amount("1000000000"), nil); err != nil {
		b.Fatal(err)
	}
	p, _ := paid.connect(b, n)
	if err := api.SetClientParams([]string{paid.id().String()}, map[string]interface{}{"capacity": float64(paidCap)}); err != nil {
		b.Fatal(err)
	}
	f := n.flowOf(b, paid.id())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); paid.download(ctx, p) }()
	cost, bytes := measureRates(b, []*flow{f}, []*ethClient{paid})
	cancel()
	<-done
	b.ReportMetric(cost[0]/paidCap, "served/capacity")
	b.ReportMetric(bytes[0], "B/s")
}

package node

import (
	"context"
	"math/big"
	"strings"
	"testing"

	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
)

// startBenchNode is startNode for benchmarks.
func startBenchNode(b *testing.B, datadir string) (*gethnode.Node, *RPCClient) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Serve = true
	cfg.RequestRate = 0 // measure the path, not the global rate limit
	stack, err := gethnode.New(&gethnode.Config{Name: "vflux", DataDir: datadir,
		P2P: p2p.Config{ListenAddr: "127.0.0.1:0", DiscoveryV5: true}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := New(stack, cfg); err != nil {
		b.Fatal(err)
	}
	if err := stack.Start(); err != nil {
		b.Fatal(err)
	}
	c := NewRPCClient(stack.Attach())
	b.Cleanup(func() {
		c.Close()
		stack.Close()
	})
	return stack, c
}

// BenchmarkTalkQueryRoundTrip is one capacity query with 5 amounts plus
// "info" and "bal" over real discv5 on loopback, as `vflux query` sends it.
func BenchmarkTalkQueryRoundTrip(b *testing.B) {
	stack, _ := startBenchNode(b, "")
	server := stack.Server().Self()
	c := newQueryClient(b, server, "")
	amounts := []*big.Int{big.NewInt(0), big.NewInt(1e9), big.NewInt(1e10), big.NewInt(1e11), big.NewInt(1e12)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.QueryAmounts(ctx, server, amounts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddBalanceOverRPC is one vflux_addBalance through the in-process
// RPC client onto LevelDB (the write is synchronous).
func BenchmarkAddBalanceOverRPC(b *testing.B) {
	_, c := startBenchNode(b, b.TempDir())
	id := "0x" + strings.Repeat("42", 32)
	one := big.NewInt(1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := c.AddBalance(ctx, id, one); err != nil {
			b.Fatal(err)
		}
	}
}

package node

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

func TestAddBalanceReportsAFailedDatabaseWrite(t *testing.T) {
	// Fix: the pool only logged a failed top-up write and the RPC answered
	// [old, new] as if the tokens were on disk (SPEC 2.5: the RPC returns after
	// the write). A closed balance database makes every write fail, and every
	// read: a connected client's top-up needs no read (its balance is in
	// memory), so it fails at the write; an offline client's fails at the read
	// (a failed read is never taken for "no balance").
	cfg := testConfig(4)
	n := startNode(t, cfg, t.TempDir(), true)
	c := mustDial(t, n)
	waitCapacity(t, c, cfg.MinCap) // registered with the pool
	ctx := context.Background()
	connected := c.srv.Self().ID().String()
	key, _ := crypto.GenerateKey()
	offline := enode.PubkeyToIDV4(&key.PublicKey).String()
	for _, id := range []string{connected, offline} {
		if old, nw, err := n.api.AddBalance(ctx, id, big.NewInt(1000)); err != nil || old != 0 || nw != 1000 {
			t.Fatalf("AddBalance = [%d, %d], %v; want [0, 1000]", old, nw, err)
		}
	}
	if err := n.svc.db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ id, want string }{{connected, "write balance batch"}, {offline, "read balance"}} {
		old, nw, err := n.api.AddBalance(ctx, tt.id, big.NewInt(500))
		if err == nil {
			t.Fatalf("AddBalance with a failing database = [%d, %d], no error", old, nw)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("error %q does not name the failure (%q)", err, tt.want)
		}
	}
}

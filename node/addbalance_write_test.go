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
	// the write). A closed balance database makes every write fail.
	n := startNode(t, testConfig(4), t.TempDir(), true)
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	id := enode.PubkeyToIDV4(&key.PublicKey).String()
	if old, nw, err := n.api.AddBalance(ctx, id, big.NewInt(1000)); err != nil || old != 0 || nw != 1000 {
		t.Fatalf("AddBalance = [%d, %d], %v; want [0, 1000]", old, nw, err)
	}
	if err := n.svc.db.Close(); err != nil {
		t.Fatal(err)
	}
	old, nw, err := n.api.AddBalance(ctx, id, big.NewInt(500))
	if err == nil {
		t.Fatalf("AddBalance with a failing database = [%d, %d], no error", old, nw)
	}
	if !strings.Contains(err.Error(), "write balance batch") {
		t.Fatalf("error %q does not name the failed write", err)
	}
}

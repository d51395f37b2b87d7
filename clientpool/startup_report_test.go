package clientpool

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/log"
)

// Regression: a corrupt positive balance record was silently left out of the
// token total at start and only reported once its client connected or an
// operator asked for it (found by the process-level crash test,
// cmd/vflux/crash_test.go). SPEC 2.5 wants it reported; an operator needs to
// see it when the node starts.
func TestCorruptStoredBalanceIsReportedAtStart(t *testing.T) {
	db := memorydb.New()
	good, bad := nodeID(1), nodeID(2)
	db.Put(posKey(bad), []byte{0xff, 0x13, 0x37})
	var v ExpiredValue
	v.Add(5_000_000_000, 0)
	b := (&store{db: db}).newBatch()
	b.putPos(good, v)
	if err := b.write(0, 0); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	defer log.SetDefault(log.Root())
	log.SetDefault(log.NewLogger(log.NewTerminalHandler(&buf, false)))
	pool := NewClientPool(db, 1, 0, &mclock.Simulated{}, nil)
	defer pool.Stop()
	log.SetDefault(log.NewLogger(log.DiscardHandler()))

	out := buf.String()
	if !strings.Contains(out, "Corrupt positive balances") || !strings.Contains(out, "count=1") {
		t.Fatalf("no report of the corrupt record at start; log:\n%s", out)
	}
	if got := pool.TotalTokenAmount(); got != 5_000_000_000 {
		t.Fatalf("total %d, want the good balance 5000000000", got)
	}
}

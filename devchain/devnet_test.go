package devchain

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/vflux-net/vflux/node"
)

// watchedWorkload counts the devnet chain's blocks and their transactions
// while it runs.
type watchedWorkload struct {
	*Workload
	blocks, txs atomic.Int64
}

func (w *watchedWorkload) Setup(stack *gethnode.Node) error {
	if err := w.Workload.Setup(stack); err != nil {
		return err
	}
	bc := w.Chain().Eth().BlockChain()
	heads := make(chan core.ChainHeadEvent, 16)
	sub := bc.SubscribeChainHeadEvent(heads)
	go func() {
		defer sub.Unsubscribe()
		for {
			select {
			case ev := <-heads:
				if b := bc.GetBlock(ev.Header.Hash(), ev.Header.Number.Uint64()); b != nil {
					w.blocks.Add(1)
					w.txs.Add(int64(len(b.Transactions())))
				}
			case <-sub.Err():
				return
			}
		}
	}()
	return nil
}

func TestDevnetClientsDownloadTheDevChainOverEthAndTheViewShowsIt(t *testing.T) {
	cfg := node.DefaultDevnetConfig()
	cfg.Clients, cfg.Paid = 3, 1
	cfg.Server.MaxClients, cfg.Server.MaxInactive = 2, 2
	cfg.Server.Govern = []string{"eth", "snap"}
	cfg.Duration = 3 * time.Second
	cfg.Progress = time.Second
	cfg.IPCPath = ""
	w := &watchedWorkload{Workload: NewWorkload(Config{Period: 1})}
	defer w.Close()
	cfg.Workload = w

	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- node.RunDevnet(context.Background(), cfg, &out) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("the devnet did not stop %v after its duration", testTimeout)
	}
	text := out.String()
	if !regexp.MustCompile(`\n  ID\s+NAME\s+STATE\s+CAPACITY  ETH KIB/S  POS BALANCE`).MatchString(text) {
		t.Fatalf("no eth column next to the capacity in the view:\n%s", text)
	}
	// Active clients were served eth data.
	rows := regexp.MustCompile(`\n  [0-9a-f]{8}  ((?:paid|free)-\d)\s+active\s+\d+\s+([0-9.]+)\s`).FindAllStringSubmatch(text, -1)
	served := 0
	for _, r := range rows {
		if rate, _ := strconv.ParseFloat(r[2], 64); rate > 0 {
			served++
		}
	}
	if served == 0 {
		t.Errorf("no active client was served eth data:\n%s", text)
	}
	if w.blocks.Load() < 2 {
		t.Fatalf("the devnet's dev chain made %d blocks in %v", w.blocks.Load(), cfg.Duration)
	}
	if w.txs.Load() == 0 {
		t.Error("no block of the devnet has transactions: bodies have nothing to download")
	}
}

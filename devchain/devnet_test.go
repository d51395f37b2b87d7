package devchain

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vflux-net/vflux/node"
)

func TestDevnetClientsDownloadTheDevChainOverEthAndTheTableShowsIt(t *testing.T) {
	cfg := node.DefaultDevnetConfig()
	cfg.Clients, cfg.Paid = 3, 1
	cfg.Server.MaxClients, cfg.Server.MaxInactive = 2, 2
	cfg.Server.Govern = []string{"eth", "snap"}
	cfg.Duration = 3 * time.Second
	cfg.Progress, cfg.Table = time.Second, time.Second
	cfg.IPCPath = ""
	w := NewWorkload(Config{Period: 1})
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
	if !bytes.Contains(out.Bytes(), []byte("eth served KiB/s")) {
		t.Fatalf("no eth column in the table:\n%s", text)
	}
	// Active clients were served eth data.
	rows := regexp.MustCompile(`(client-\d[^\n]*?)\s+active\s+\d+\s+([0-9.]+)\s`).FindAllStringSubmatch(text, -1)
	served := 0
	for _, r := range rows {
		if rate, _ := strconv.ParseFloat(r[2], 64); rate > 0 {
			served++
		}
	}
	if served == 0 {
		t.Errorf("no active client was served eth data:\n%s", text)
	}
	if w.Chain().Head().Number.Uint64() == 0 {
		t.Error("the devnet's dev chain made no block")
	}
}

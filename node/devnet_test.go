package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDevnetPrintsThePoolAsClientsComeAndGo(t *testing.T) {
	cfg := DefaultDevnetConfig()
	cfg.Clients, cfg.Paid = 4, 1
	cfg.Server.MaxClients = 2
	cfg.Duration = 2 * time.Second
	cfg.Progress, cfg.Table = 300*time.Millisecond, time.Second
	cfg.IPCPath = ""
	var out bytes.Buffer
	if err := RunDevnet(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"devnet: 1 server, 4 clients (1 paid",
		"client-1 (paid)    connected",
		"activated, capacity 1000",
		"asked for capacity 2000: granted 2000",
		"-- active 2/2",
		"client-1 (paid)  active",
		"devnet stopped after",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("devnet output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", text)
	}
}

func TestDevnetRejectsBadConfigs(t *testing.T) {
	cfg := DefaultDevnetConfig()
	cfg.Paid = cfg.Clients + 1
	if err := RunDevnet(context.Background(), cfg, new(bytes.Buffer)); err == nil {
		t.Error("more paid clients than clients was accepted")
	}
}

func TestTheDefaultDevnetIPCPathIsPerProcess(t *testing.T) {
	got := DefaultDevnetConfig().IPCPath
	want := filepath.Join(os.TempDir(), fmt.Sprintf("vflux-devnet-%d.ipc", os.Getpid()))
	if got != want {
		t.Fatalf("default devnet IPC path %q, want %q (named after the process, so two devnets do not collide)", got, want)
	}
}

package node

import (
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/params"
)

func TestNodeFillsThePoolToMaxClientsOverRLPx(t *testing.T) {
	cfg := testConfig(3)
	cfg.MaxInactive = 2
	n := startNode(t, cfg, "", true)
	if got := n.stack.Server().MaxPeers; got != 5 {
		t.Fatalf("MaxPeers = %d, want maxclients + maxinactive = 5", got)
	}
	var clients []*testClient
	for i := 0; i < 5; i++ {
		clients = append(clients, mustDial(t, n))
	}
	for _, c := range clients[:3] {
		waitCapacity(t, c, cfg.MinCap)
	}
	if count, capacity := n.svc.Pool().Active(); count != 3 || capacity != 3*cfg.MinCap {
		t.Errorf("Active() = (%d, %d), want (3, %d)", count, capacity, 3*cfg.MinCap)
	}
	// The server registers a client just after the client sees the handshake.
	eventually(t, "two waiting clients", func() bool { return n.svc.Pool().Inactive() == 2 })
	for _, c := range clients[3:] {
		if c.cl.Capacity() != 0 {
			t.Errorf("a waiting client has capacity %d", c.cl.Capacity())
		}
	}
	// Every peer slot is taken: the p2p server refuses a sixth client before
	// the vfx handshake (the client keeps redialing until its context ends).
	if c6, err := dialClientTimeout(t, n, 2*time.Second); err == nil {
		t.Fatalf("a sixth client connected with capacity %d; the node has 5 slots", c6.cl.Capacity())
	}
	if got := n.stack.Server().PeerCount(); got != 5 {
		t.Errorf("p2p PeerCount() = %d, want 5", got)
	}
	if got := n.svc.PeerCount(); got != 5 {
		t.Errorf("vfx PeerCount() = %d, want 5", got)
	}
}

func TestBalancesSurviveARestartOnTheSameDatadir(t *testing.T) {
	dir := t.TempDir()
	id := "0x" + strings.Repeat("ab", 32)
	n := startNode(t, testConfig(10), dir, true)
	ctx := context.Background()
	if _, newBal, err := n.api.AddBalance(ctx, id, big.NewInt(5e9)); err != nil || newBal != 5e9 {
		t.Fatalf("AddBalance = %d, %v; want 5e9", newBal, err)
	}
	// The database is a plain LevelDB directory, not a chain database.
	dbDir := filepath.Join(dir, "vflux", params.DataDirName)
	if _, err := os.Stat(filepath.Join(dbDir, "CURRENT")); err != nil {
		t.Fatalf("no LevelDB at %s: %v", dbDir, err)
	}
	if _, err := os.Stat(filepath.Join(dbDir, "ancient")); !os.IsNotExist(err) {
		t.Errorf("the balance store has a freezer directory: it was opened as a chain database")
	}
	if err := n.stack.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.svc.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	n2 := startNode(t, testConfig(10), dir, true)
	info, err := n2.api.ClientInfo(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range info {
		if ci.PosBalance != 5e9 {
			t.Errorf("balance after restart = %d, want 5e9", ci.PosBalance)
		}
	}
	if len(info) != 1 {
		t.Errorf("clientInfo returned %d entries, want 1", len(info))
	}
	if tot := n2.svc.Pool().TotalTokenAmount(); tot != 5e9 {
		t.Errorf("TotalTokenAmount after restart = %d, want 5e9", tot)
	}
}

func TestStoppedServiceAnswersNothingAndFailsCleanly(t *testing.T) {
	n := startNode(t, testConfig(2), "", false)
	c := mustDial(t, n)
	waitCapacity(t, c, DefaultConfig().MinCap)
	if err := n.svc.Stop(); err != nil {
		t.Fatal(err)
	}
	// Peer loops return DiscQuitting and the client sees the disconnect.
	select {
	case <-c.cl.Done():
	case <-deadline():
		t.Fatal("client still connected after Stop")
	}
	if !errors.Is(c.cl.DisconnectReason(), p2p.DiscQuitting) {
		t.Errorf("client disconnected with %v, want %v", c.cl.DisconnectReason(), p2p.DiscQuitting)
	}
	if _, err := n.api.ServerInfo(context.Background()); err == nil || !containsErr(err, ErrNotServing) {
		t.Errorf("ServerInfo after Stop = %v, want %v", err, ErrNotServing)
	}
	// TALKREQ after Stop: the handler stays registered in discv5 but answers empty.
	q, err := NewQuerier(n.stack.Server().Self().IP())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	_, err = q.Query(ctx, n.stack.Server().Self(), params.ServiceName, []*big.Int{big.NewInt(0)}, 0)
	if !errors.Is(err, ErrNoAnswer) {
		t.Errorf("query after Stop = %v, want %v", err, ErrNoAnswer)
	}
	if err := n.svc.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

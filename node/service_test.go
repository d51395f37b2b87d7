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
	"github.com/vflux-net/vflux/client"
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
	for i := 0; i < 4; i++ {
		clients = append(clients, mustDial(t, n))
	}
	for _, c := range clients[:3] {
		waitCapacity(t, c, cfg.MinCap)
	}
	if count, capacity := n.svc.Pool().Active(); count != 3 || capacity != 3*cfg.MinCap {
		t.Errorf("Active() = (%d, %d), want (3, %d)", count, capacity, 3*cfg.MinCap)
	}
	// The server registers a client just after the client sees the handshake.
	eventually(t, "one waiting client", func() bool { return n.svc.Pool().Inactive() == 1 })
	if c := clients[3]; c.cl.Capacity() != 0 {
		t.Errorf("the fourth client has capacity %d with 3 slots taken", c.cl.Capacity())
	}

	// A fifth free client still finds a peer slot (one is kept free), and the
	// lowest-priority waiting client is disconnected to keep it free.
	// Both have the same (zero) priority: either may go, the newcomer even
	// right after its handshake.
	fifth, err := dialClient(t, n)
	var reason error
	if err != nil {
		reason = err
	} else {
		reason = waitOneDisconnect(t, []*testClient{clients[3], fifth}).cl.DisconnectReason()
	}
	if !errors.Is(reason, p2p.DiscTooManyPeers) {
		t.Errorf("a waiting client was dropped with %v, want %v", reason, p2p.DiscTooManyPeers)
	}
	eventually(t, "one waiting client after the eviction", func() bool { return n.svc.Pool().Inactive() == 1 })

	// A paid client arriving at the full node takes an active slot.
	paid, err := newClientKey(t)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.api.AddBalance(context.Background(), paid.Self().ID().String(), big.NewInt(1e15)); err != nil {
		t.Fatal(err)
	}
	pc := dialWith(t, n, paid)
	waitCapacity(t, pc, cfg.MinCap)
	if count, _ := n.svc.Pool().Active(); count != 3 {
		t.Errorf("%d active clients after the paid one arrived, want maxclients 3", count)
	}
	// One of the first three free clients made room (its update may still be
	// on the wire).
	eventually(t, "two of the first three free clients keeping capacity", func() bool {
		var stillActive int
		for _, c := range clients[:3] {
			if c.cl.Capacity() > 0 {
				stillActive++
			}
		}
		return stillActive == 2
	})
	if got := n.stack.Server().PeerCount(); got > 5 {
		t.Errorf("p2p PeerCount() = %d, above MaxPeers 5", got)
	}
}

// waitOneDisconnect waits until one of the clients is disconnected and
// returns it.
func waitOneDisconnect(t *testing.T, clients []*testClient) *testClient {
	t.Helper()
	timeout := time.After(netTimeout)
	for {
		for _, c := range clients {
			select {
			case <-c.cl.Done():
				return c
			default:
			}
		}
		select {
		case <-clients[0].cl.Done():
		case <-clients[len(clients)-1].cl.Done():
		case <-timeout:
			t.Fatal("no waiting client was disconnected")
		}
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
	if _, err := queryNode(t, n, netTimeout, 0); !errors.Is(err, client.ErrEmptyAnswer) {
		t.Errorf("query after Stop = %v, want %v", err, client.ErrEmptyAnswer)
	}
	if err := n.svc.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

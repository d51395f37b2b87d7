package main

import (
	"context"
	"math/big"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	vfnode "github.com/vflux-net/vflux/node"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/protocol"
)

// TestTopShowsEveryClientWithShortIDStateCapacityAndSpendAndFollowsEvents
// runs a serving node with two active slots and three real RLPx clients (one
// paid, holding 2000; one free at minCap; one free, waiting), then checks
// `vflux top --once` and a live `vflux top` writing to a pipe.
func TestTopShowsEveryClientWithShortIDStateCapacityAndSpendAndFollowsEvents(t *testing.T) {
	dir := e2eDir(t)
	n := startE2ENode(t, dir, "--vflux.serve", "--nodiscover", "--vflux.maxclients", "2", "--vflux.inactive", "1m")
	rpcc, err := vfnode.DialRPC(context.Background(), filepath.Join(dir, params.DefaultIPCName))
	if err != nil {
		t.Fatal(err)
	}
	defer rpcc.Close()
	events := make(chan vfnode.Event, 64)
	sub, err := rpcc.SubscribeEvents(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	paid := dialTopClient(t, n.enode, func(id enode.ID) {
		if _, _, err := rpcc.AddBalance(context.Background(), id.String(), big.NewInt(1e12)); err != nil {
			t.Fatal(err)
		}
	})
	waitPoolEvent(t, events, "activated", paid.id)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if reply, err := paid.cl.RequestCapacity(ctx, 2*params.DefaultMinCap, 0); err != nil || reply.Capacity != 2*params.DefaultMinCap {
		t.Fatalf("paid client asked for 2000: %+v, %v", reply, err)
	}
	free := dialTopClient(t, n.enode, nil)
	waitPoolEvent(t, events, "activated", free.id)
	waiting := dialTopClient(t, n.enode, nil)
	waitPoolEvent(t, events, "connected", waiting.id)

	out, stderr, err := runVflux(t, "top", "--once", "--interval", "300ms", "--datadir", dir)
	if err != nil {
		t.Fatalf("vflux top --once: %v\n%s%s", err, out, stderr)
	}
	t.Logf("vflux top --once:\n%s", out)
	rows := clientRows(t, out)
	want := []struct {
		c             *topClient
		state, capStr string
	}{{paid, "active", "2000"}, {free, "active", "1000"}, {waiting, "inactive", "0"}}
	if len(rows) != len(want) {
		t.Fatalf("%d client rows, want %d:\n%s", len(rows), len(want), out)
	}
	for i, w := range want {
		short := w.c.id.String()[:8]
		if got := rows[i]; got[0] != short || got[1] != w.state || got[2] != w.capStr {
			t.Errorf("row %d = %v, want %s %s %s (active first by capacity, then waiting)", i, got, short, w.state, w.capStr)
		}
	}
	// The paid client spends capacityFactor (1e9 per 1e6 capacity per second)
	// * 2000 = 2e6 tokens a second, read from two samples 300 ms apart.
	if spend, err := strconv.ParseFloat(strings.TrimSuffix(rows[0][5], "M"), 64); err != nil || spend < 1.9 || spend > 2.1 {
		t.Errorf("paid client's spend %q, want about 2.00M", rows[0][5])
	}
	if rows[1][5] == "-" {
		t.Errorf("free active client has no spend rate (its negative balance grows)")
	}
	if !strings.Contains(out, "FULL by count: 2/2 active slots taken") {
		t.Errorf("top does not say the node is full by count:\n%s", out)
	}
	// `vflux clients` prints the full IDs that the short IDs are prefixes of.
	clients, _, err := runVflux(t, "clients", "--datadir", dir)
	if err != nil || !regexp.MustCompile(`(?m)^`+rows[0][0]+`[0-9a-f]{56}\s+true\s+2000\s`).MatchString(clients) {
		t.Errorf("vflux clients has no full ID starting with %s: %v\n%s", rows[0][0], err, clients)
	}

	// Live, into a pipe: frames without escape codes, separated by a blank
	// line, following the events. The free active client leaves and the
	// waiting one takes its slot.
	live := exec.Command(e2eBin, "top", "--interval", "100ms", "--datadir", dir)
	liveOut := newLogWatch()
	live.Stdout, live.Stderr = liveOut, liveOut
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	liveExited := make(chan struct{})
	var liveErr error
	go func() { liveErr = live.Wait(); close(liveExited) }()
	defer func() {
		select {
		case <-liveExited:
		default:
			live.Process.Kill()
			<-liveExited
		}
	}()
	liveOut.wait(t, regexp.MustCompile(`^\s+`+waiting.id.String()[:8]+`\s+inactive\s`), liveExited)
	free.cl.Close()
	// It leaves while active: deactivated, then disconnected, with the
	// pool's reason.
	liveOut.wait(t, regexp.MustCompile(`^\s+\d\d:\d\d:\d\d\s+`+free.id.String()[:8]+`\s+deactivated\s+reason: peer left$`), liveExited)
	liveOut.wait(t, regexp.MustCompile(`^\s+\d\d:\d\d:\d\d\s+`+free.id.String()[:8]+`\s+disconnected\s+reason: peer left$`), liveExited)
	liveOut.wait(t, regexp.MustCompile(`^\s+\d\d:\d\d:\d\d\s+`+waiting.id.String()[:8]+`\s+activated\s+capacity 1000$`), liveExited)
	liveOut.wait(t, regexp.MustCompile(`^\s+`+waiting.id.String()[:8]+`\s+active\s+1000\s`), liveExited)
	if err := live.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-liveExited:
		if liveErr != nil {
			t.Errorf("live top exited with %v after SIGINT:\n%s", liveErr, liveOut.String())
		}
	case <-time.After(e2eTimeout):
		t.Fatal("live top did not exit on SIGINT")
	}
	text := liveOut.String()
	if strings.Contains(text, "\x1b") {
		t.Errorf("escape codes in output to a pipe:\n%q", text)
	}
	if !strings.HasPrefix(text, "vflux top ") || !strings.Contains(text, "\n\nvflux top ") {
		t.Errorf("frames are not separated by a blank line:\n%s", text)
	}
}

// clientRows returns the cells of the client table's rows in order.
func clientRows(t *testing.T, frame string) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for _, line := range strings.Split(frame, "\n") {
		switch {
		case strings.HasPrefix(line, "  ID "):
			in = true
		case in && strings.TrimSpace(line) == "":
			return rows
		case in:
			rows = append(rows, strings.Fields(line))
		}
	}
	t.Fatalf("no client table in:\n%s", frame)
	return nil
}

// topClient is a real RLPx client of the node under test.
type topClient struct {
	id enode.ID
	cl *protocol.Client
}

// dialTopClient starts a client p2p server, calls before with its node ID
// (to fund it, say) and connects it to the node, without waiting for
// capacity.
func dialTopClient(t *testing.T, nodeURL string, before func(enode.ID)) *topClient {
	t.Helper()
	server, err := enode.Parse(enode.ValidSchemes, nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	peers := protocol.NewClientPeers()
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{
		Protocols: []p2p.Protocol{peers.Protocol()}, NoDiscovery: true, NoListen: true,
	})
	c := &topClient{id: srv.Self().ID()}
	if before != nil {
		before(c.id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if c.cl, err = peers.Dial(ctx, srv, server); err != nil {
		t.Fatalf("protocol client dial: %v", err)
	}
	t.Cleanup(c.cl.Close)
	return c
}

// waitPoolEvent waits for a pool event of the given type about id.
func waitPoolEvent(t *testing.T, events <-chan vfnode.Event, typ string, id enode.ID) {
	t.Helper()
	timeout := time.After(e2eTimeout)
	for {
		select {
		case ev := <-events:
			if ev.Type == typ && ev.ID == id.String() {
				return
			}
		case <-timeout:
			t.Fatalf("no %q event for %s within %v", typ, id.TerminalString(), e2eTimeout)
		}
	}
}

package main

import (
	"context"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

// TestTopShowsEveryClientWithShortIDStateCapacityAndSpendAndFollowsEvents
// runs a serving node with two active slots and three real RLPx clients (one
// paid, holding 2000; one free at minCap; one free, waiting), then checks
// `vflux top --once` and a live `vflux top` writing to a pipe.
func TestTopShowsEveryClientWithShortIDStateCapacityAndSpendAndFollowsEvents(t *testing.T) {
	dir := e2eDir(t)
	n := startE2ENode(t, dir, "--vflux.serve", "--nodiscover", "--vflux.maxclients", "2", "--vflux.inactive", "1m")
	rpcc, events := watchE2ENode(t, dir)

	paid := dialE2EClient(t, n.enode, func(id enode.ID) {
		if _, _, err := rpcc.AddBalance(context.Background(), id.String(), big.NewInt(1e12)); err != nil {
			t.Fatal(err)
		}
	})
	waitEvent(t, events, "activated", paid.id)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if reply, err := paid.cl.RequestCapacity(ctx, 2*params.DefaultMinCap, 0); err != nil || reply.Capacity != 2*params.DefaultMinCap {
		t.Fatalf("paid client asked for 2000: %+v, %v", reply, err)
	}
	free := dialE2EClient(t, n.enode, nil)
	waitEvent(t, events, "activated", free.id)
	waiting := dialE2EClient(t, n.enode, nil)
	waitEvent(t, events, "connected", waiting.id)

	out, stderr, err := runVflux(t, "top", "--once", "--interval", "300ms", "--datadir", dir)
	if err != nil {
		t.Fatalf("vflux top --once: %v\n%s%s", err, out, stderr)
	}
	t.Logf("vflux top --once:\n%s", out)
	rows := clientRows(t, out)
	want := []struct {
		c             *e2eClient
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
	live := startE2EProc(t, "live top", "top", "--interval", "100ms", "--datadir", dir)
	live.out.wait(t, regexp.MustCompile(`^\s+`+waiting.id.String()[:8]+`\s+inactive\s`), live.exited)
	free.cl.Close()
	// It leaves while active: deactivated, then disconnected, with the
	// pool's reason.
	live.out.wait(t, regexp.MustCompile(`^\s+\d\d:\d\d:\d\d\s+`+free.id.String()[:8]+`\s+deactivated\s+reason: peer left$`), live.exited)
	live.out.wait(t, regexp.MustCompile(`^\s+\d\d:\d\d:\d\d\s+`+free.id.String()[:8]+`\s+disconnected\s+reason: peer left$`), live.exited)
	live.out.wait(t, regexp.MustCompile(`^\s+\d\d:\d\d:\d\d\s+`+waiting.id.String()[:8]+`\s+activated\s+capacity 1000$`), live.exited)
	live.out.wait(t, regexp.MustCompile(`^\s+`+waiting.id.String()[:8]+`\s+active\s+1000\s`), live.exited)
	live.interrupt(t)
	text := live.out.String()
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

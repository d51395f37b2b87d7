package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/protocol"
)

// startConnect runs `vflux connect` with args.
func startConnect(t *testing.T, args ...string) *e2eProc {
	t.Helper()
	return startE2EProc(t, "connect", append([]string{"connect"}, args...)...)
}

// clientID runs `vflux id` and returns the node ID it prints.
func clientID(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := runVflux(t, append([]string{"id"}, args...)...)
	if err != nil {
		t.Fatalf("vflux id: %v\n%s%s", err, out, stderr)
	}
	m := regexp.MustCompile(`(?m)^node ID\s+([0-9a-f]{64})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("vflux id printed no node ID:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^public key\s+04[0-9a-f]{128}\b`).MatchString(out) {
		t.Errorf("vflux id printed no uncompressed public key:\n%s", out)
	}
	return m[1]
}

func TestConnectGetsMoreCapacityAfterTheOperatorTopsUpItsID(t *testing.T) {
	dir := e2eDir(t)
	n := startE2ENode(t, filepath.Join(dir, "server"), "--vflux.serve", "--vflux.maxclients", "4")
	cdir := filepath.Join(dir, "client")
	id := clientID(t, "--datadir", cdir)
	if again := clientID(t, "--datadir", cdir); again != id {
		t.Fatalf("second vflux id printed %s, first %s: the key was not kept", again, id)
	}

	p := startConnect(t, "--datadir", cdir, "--capacity", "5000", "--retry", "200ms", n.enr)
	p.out.wait(t, regexp.MustCompile(`^client node ID `+id+`$`), p.exited)
	p.out.wait(t, regexp.MustCompile(`asked 5000, refused: .*holding 1000$`), p.exited)

	out, stderr, err := runVflux(t, "balance", "add", "--datadir", n.datadir, id, "1e12")
	if err != nil {
		t.Fatalf("balance add: %v\n%s%s", err, out, stderr)
	}
	p.out.wait(t, regexp.MustCompile(`asked 5000, granted 5000$`), p.exited)

	// query asks with the same key: its balance line is this client's.
	out, stderr, err = runVflux(t, "query", "--datadir", cdir, "--amounts", "0", n.enr)
	m := regexp.MustCompile(`(?m)^your balance\s+(\d+) tokens .*for node ID ` + id + `$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("query printed no balance line for %s: %v\n%s%s", id, err, out, stderr)
	}
	// Spent since the top-up by the connection, but most of it is left.
	if bal, _ := strconv.ParseUint(m[1], 10, 64); bal < 9e11 || bal > 1e12 {
		t.Fatalf("query does not show the topped-up balance of %s: %v\n%s%s", id, err, out, stderr)
	}

	p.interrupt(t)
}

func TestConnectExitsWithItsOwnCodeWhenEvictedOrUnreachable(t *testing.T) {
	dir := e2eDir(t)
	n := startE2ENode(t, filepath.Join(dir, "server"), "--vflux.serve", "--vflux.maxclients", "1", "--vflux.inactive", "0s")
	p := startConnect(t, "--datadir", filepath.Join(dir, "client"), n.enr)
	p.out.wait(t, regexp.MustCompile(`capacity 1000`), p.exited)

	paidE2EClient(t, n)
	if code := p.exitCode(t); code != exitEvicted {
		t.Fatalf("connect exited with %d after eviction, want %d:\n%s", code, exitEvicted, p.out.String())
	}
	if !strings.Contains(p.out.String(), "evicted by the server: too many peers") {
		t.Errorf("connect did not say why it ended:\n%s", p.out.String())
	}

	// Nobody listens on the node's port any more once it is stopped.
	n.interrupt(t)
	u := startConnect(t, "--datadir", filepath.Join(dir, "client"), "--timeout", "1s", n.enode)
	if code := u.exitCode(t); code != exitUnreachable {
		t.Fatalf("connect to a stopped node exited with %d, want %d:\n%s", code, exitUnreachable, u.out.String())
	}
}

// paidE2EClient funds a fresh protocol client on the node process and connects
// it, so it out-ranks every free client.
func paidE2EClient(t *testing.T, n *e2eNode) *protocol.Client {
	t.Helper()
	return dialE2EClient(t, n.enode, func(id enode.ID) {
		out, stderr, err := runVflux(t, "balance", "add", "--datadir", n.datadir, id.String(), "1e12")
		if err != nil {
			t.Fatalf("balance add: %v\n%s%s", err, out, stderr)
		}
	}).cl
}

func TestServersFindsBothNodesThroughTheBootnodeAndRanksThem(t *testing.T) {
	dir := e2eDir(t)
	boot := startE2ENode(t, filepath.Join(dir, "a"), "--vflux.serve", "--vflux.maxclients", "4")
	small := startE2ENode(t, filepath.Join(dir, "b"), "--vflux.serve", "--vflux.maxclients", "2", "--bootnodes", boot.enr)
	out, stderr, err := runVflux(t, "servers", "--datadir", filepath.Join(dir, "client"),
		"--bootnodes", boot.enr, "--amounts", "0,1e12", "--limit", "2", "--timeout", "30s")
	if err != nil {
		t.Fatalf("vflux servers: %v\n%s%s", err, out, stderr)
	}
	// 4 slots of mincap 1000 times 10 buy more than 2: boot's row comes first.
	rows := regexp.MustCompile(`(?m)^([0-9a-f]{16})\s+1000\s+(\d+)\s`).FindAllStringSubmatch(out, -1)
	idOf := func(n *e2eNode) string {
		node, err := enode.Parse(enode.ValidSchemes, n.enr)
		if err != nil {
			t.Fatal(err)
		}
		return node.ID().String()[:16]
	}
	if len(rows) != 2 || rows[0][1] != idOf(boot) || rows[1][1] != idOf(small) || rows[0][2] != "40000" || rows[1][2] != "20000" {
		t.Fatalf("servers table is not [boot 40000, small 20000]:\n%s", out)
	}
	if !strings.Contains(stderr, "2 servers found") {
		t.Errorf("no progress line on stderr:\n%s", stderr)
	}
}

package main

import (
	"context"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/params"
)

func TestServedNodeAnswersQueriesAndKeepsATopUpAcrossARestart(t *testing.T) {
	dir := e2eDir(t)
	n := startE2ENode(t, dir, "--vflux.serve")

	out, stderr, err := runVflux(t, "query", n.enr)
	if err != nil {
		t.Fatalf("vflux query: %v\n%s%s", err, out, stderr)
	}
	if !regexp.MustCompile(`(?m)^\s+0\s+1000\s*$`).MatchString(out) {
		t.Errorf("query output has no line '0 -> 1000' (minCap for a free client):\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^\s+1000000000000\s+[1-9]\d*\s*$`).MatchString(out) {
		t.Errorf("query output has no non-zero capacity for 1e12 tokens:\n%s", out)
	}
	if !strings.Contains(out, "active clients  0 of 100") {
		t.Errorf("query output lacks the server info:\n%s", out)
	}

	key, _ := crypto.GenerateKey()
	id := enode.PubkeyToIDV4(&key.PublicKey).String()
	out, stderr, err = runVflux(t, "balance", "add", "--datadir", dir, id, "2.5e12")
	if err != nil || !strings.Contains(out, "balance 0 -> 2500000000000") {
		t.Fatalf("balance add: %v\n%s%s", err, out, stderr)
	}
	enr := n.enr
	n.interrupt(t)
	if !strings.Contains(n.out.String(), "vflux stopped") {
		t.Errorf("no clean vflux shutdown in the log:\n%s", n.out.String())
	}

	n2 := startE2ENode(t, dir, "--vflux.serve")
	if n2.enr == enr {
		t.Log("same ENR after restart (the record's sequence number normally changes)")
	}
	out, stderr, err = runVflux(t, "balance", "get", "--datadir", dir, id)
	if err != nil {
		t.Fatalf("balance get: %v\n%s", err, stderr)
	}
	if !regexp.MustCompile(id + `\s+false\s+0\s+2500000000000\s`).MatchString(out) {
		t.Errorf("balance after restart is not 2500000000000:\n%s", out)
	}
	out, _, err = runVflux(t, "clients", "--datadir", dir)
	if err != nil || !strings.Contains(out, "2500000000000 tokens held") {
		t.Errorf("clients: %v\n%s", err, out)
	}
}

func TestNodeWithoutDiscoveryServesRLPxAndQueryFailsClearly(t *testing.T) {
	dir := e2eDir(t)
	n := startE2ENode(t, dir, "--vflux.serve", "--nodiscover", "--metrics", "--metrics.port", "0")
	if !strings.Contains(n.out.String(), "Discovery v5 is off") {
		t.Errorf("no warning about discovery being off:\n%s", n.out.String())
	}
	// Watch the pool over IPC while a protocol client connects.
	_, events := watchE2ENode(t, dir)

	cl := connectE2EClient(t, n.enode)
	if cl.Capacity() != params.DefaultMinCap {
		t.Errorf("client capacity %d, want minCap %d", cl.Capacity(), params.DefaultMinCap)
	}
	waitEvent(t, events, "activated", enode.ID{})
	out, _, err := runVflux(t, "clients", "--datadir", dir)
	if err != nil || !strings.Contains(out, "connected clients (1)") || !regexp.MustCompile(`\btrue\s+1000\s`).MatchString(out) {
		t.Errorf("clients does not list the connected client with capacity 1000: %v\n%s", err, out)
	}

	// Its record says it has no UDP port: query refuses at once.
	out, stderr, err := runVflux(t, "query", n.enode)
	if err == nil || !strings.Contains(stderr, "no IP and UDP port") {
		t.Errorf("query of an enode URL with discport=0: %v\n%s%s", err, out, stderr)
	}
	// Asked at the UDP port a normal node would have, nobody answers.
	start := time.Now()
	out, stderr, err = runVflux(t, "query", "--timeout", "1500ms", strings.Split(n.enode, "?")[0])
	if err == nil {
		t.Fatalf("query of a node without discovery succeeded:\n%s", out)
	}
	if !strings.Contains(stderr, "server did not answer") || strings.Contains(stderr, "panic") {
		t.Errorf("query error is not the clear message:\n%s", stderr)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("failed query took %v", took)
	}
	if !n.running() {
		t.Fatalf("node exited:\n%s", n.out.String())
	}

	// The metrics endpoint shows the connected client.
	metricsURL := n.out.wait(t, regexp.MustCompile(`Metrics server started\s+url=(http://\S+)`), n.exited)
	deadline := time.Now().Add(e2eTimeout)
	poll := time.NewTicker(50 * time.Millisecond) // the gauge has no notification: poll the endpoint
	defer poll.Stop()
	for {
		body := scrape(t, metricsURL)
		if strings.Contains(body, "vflux_clients_active 1\n") {
			if !strings.Contains(body, "vflux_clients_connected_total") {
				t.Errorf("no clientEvent meters on the Prometheus endpoint")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus endpoint never showed one active client:\n%s", body)
		}
		<-poll.C
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// e2eSomeID is a well-formed node ID no node has.
const e2eSomeID = "0x0101010101010101010101010101010101010101010101010101010101010101"

func TestBadFlagsAndConfigExitNonZeroWithAReadableError(t *testing.T) {
	dir := e2eDir(t)
	badConfig := filepath.Join(dir, "bad.toml")
	os.WriteFile(badConfig, []byte("[Vflux]\nMaxClients = 10\nBogusKey = 1\n"), 0o600)
	notTOML := filepath.Join(dir, "nottoml.toml")
	os.WriteFile(notTOML, []byte("[Vflux\nMaxClients = "), 0o600)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"an unknown flag", []string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{"a malformed number", []string{"--vflux.maxclients", "many"}, "vflux.maxclients"},
		{"a negative price", []string{"--vflux.serve", "--vflux.price.time", "-1"}, "negative"},
		{"a capacity below mincap", []string{"--vflux.capacity", "5"}, "below mincap"},
		{"a missing config file", []string{"--config", filepath.Join(dir, "missing.toml")}, "read config file"},
		{"an unknown config key", []string{"--config", badConfig}, "unknown setting(s): Vflux.BogusKey"},
		{"a config file that is not TOML", []string{"--config", notTOML}, "config file"},
		{"an unknown command", []string{"serve-please"}, `unknown command "serve-please"`},
		{"query without an address", []string{"query"}, "query takes one argument"},
		{"query of a bad address", []string{"query", "enode://nothex@127.0.0.1:1"}, "bad server address"},
		{"a bad token amount", []string{"balance", "add", "--datadir", dir, e2eSomeID, "lots"}, "not a number"},
		{"balance without a running node", []string{"balance", "get", "--datadir", dir, e2eSomeID}, "no node running"},
		{"a number for a duration", []string{"--vflux.bias", "5"}, "--vflux.bias takes a duration like 90s, 3m"},
		{"a flag after the arguments", []string{"balance", "add", e2eSomeID, "5", "--datadir", dir}, "flags go before arguments: vflux balance add --datadir " + dir + " " + e2eSomeID + " 5"},
		{"a cut ENR", []string{"balance", "get", "--datadir", dir, "enr:-IS4QHCYrYZbAKW"}, "not a valid ENR or enode URL"},
		{"top without a running node", []string{"top", "--once", "--datadir", dir}, "no node running"},
		{"top with a zero interval", []string{"top", "--interval", "0", "--datadir", dir}, "give a positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := runVflux(t, tt.args...)
			if err == nil {
				t.Fatalf("exit 0 for %v:\n%s", tt.args, out)
			}
			if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() <= 0 {
				t.Errorf("exit: %v, want a non-zero exit code", err)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr does not say %q:\n%s", tt.wantErr, stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("stderr has a panic:\n%s", stderr)
			}
		})
	}
}

func TestTalkRequestGarbageGetsEmptyAnswersAndTheNodeKeepsServing(t *testing.T) {
	n := startE2ENode(t, e2eDir(t), "--vflux.serve")
	server, err := client.ParseServerNode(n.enr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{PrivateKey: p2ptest.NewKey(t), ListenIP: client.ListenIPFor(server), QueryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	talk := func(proto string, payload []byte) []byte {
		t.Helper()
		resp, err := c.Talk(context.Background(), server, proto, payload)
		if err != nil {
			t.Fatalf("TALKREQ %q (%d bytes): %v", proto, len(payload), err)
		}
		return resp
	}
	if resp := talk("not-vfx", []byte{0xc0}); len(resp) != 0 {
		t.Errorf("unknown protocol id answered %x", resp)
	}
	if resp := talk(params.TalkProtocolID, nil); len(resp) != 0 {
		t.Errorf("empty request answered %x", resp)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 1000; i++ {
		payload := make([]byte, rng.Intn(1000))
		rng.Read(payload)
		if resp := talk(params.TalkProtocolID, payload); len(resp) != 0 {
			t.Fatalf("random request %d (%x) answered %x", i, payload, resp)
		}
	}
	if !n.running() {
		t.Fatalf("node exited:\n%s", n.out.String())
	}
	// Still serving: a real query is answered and an RLPx client gets capacity.
	out, stderr, err := runVflux(t, "query", "--amounts", "0", n.enr)
	if err != nil || !regexp.MustCompile(`(?m)^\s+0\s+1000\s*$`).MatchString(out) {
		t.Fatalf("query after the garbage: %v\n%s%s", err, out, stderr)
	}
	connectE2EClient(t, n.enode)
}

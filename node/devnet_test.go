package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/vflux-net/vflux/topview"
)

// devnetOutput hands every write of a running devnet to the test (the devnet
// writes each frame in one write).
type devnetOutput chan string

func (o devnetOutput) Write(p []byte) (int, error) {
	o <- string(p)
	return len(p), nil
}

// startDevnet runs a devnet until the returned stop is called; stop returns
// all it wrote.
func startDevnet(t *testing.T, cfg DevnetConfig) (writes devnetOutput, stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	writes = make(devnetOutput, 1024)
	done := make(chan error, 1)
	go func() { done <- RunDevnet(ctx, cfg, writes) }()
	stop = func() string {
		cancel()
		var all strings.Builder
		timeout := deadline()
		for {
			select {
			case w := <-writes:
				all.WriteString(w)
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				for len(writes) > 0 {
					all.WriteString(<-writes)
				}
				return all.String()
			case <-timeout:
				t.Fatalf("the devnet did not stop within %v", netTimeout)
			}
		}
	}
	t.Cleanup(func() { cancel() })
	return writes, stop
}

// shortIDName is a client row or event line's short ID and name.
var shortIDName = regexp.MustCompile(`\n  (?:\d\d:\d\d:\d\d  )?([0-9a-f]{8})  ((?:paid|free)-\d+)\s`)

func TestTheDevnetDrawsTheLiveViewWithEachClientsShortIDAndName(t *testing.T) {
	cfg := DefaultDevnetConfig()
	cfg.Clients, cfg.Paid = 4, 1
	cfg.Server.MaxClients, cfg.Server.MaxInactive = 2, 2 // the pool keeps 1 waiting, p2p takes a 4th
	cfg.Progress = 200 * time.Millisecond
	cfg.IPCPath = filepath.Join(t.TempDir(), "devnet.ipc")
	writes, stop := startDevnet(t, cfg)

	// Wait for frames where the paid client holds the capacity it asked for
	// and where a client is offline with a reason: four clients for two
	// slots and one waiting place, so the pool turns one away.
	paidActive := regexp.MustCompile(`\n  [0-9a-f]{8}  paid-1  active\s+2000\s`)
	offline := regexp.MustCompile(`\noffline  dialling again 2s after they left or failed\n(  .*\n)*  [0-9a-f]{8}  free-\d  (left|turned away|dial failed) \d\d:\d\d:\d\d: \S`)
	var seen strings.Builder
	timeout := deadline()
	for !paidActive.MatchString(seen.String()) || !offline.MatchString(seen.String()) {
		select {
		case w := <-writes:
			seen.WriteString(w)
		case <-timeout:
			t.Fatalf("no frame shows paid-1 active with capacity 2000, or no offline client and why:\n%s", seen.String())
		}
	}
	// The clients `vflux clients` lists over the devnet's RPC are the view's:
	// the paid one (it alone has a positive balance) is paid-1.
	c, err := rpc.Dial(cfg.IPCPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	infos, err := NewRPCClient(c).ConnectedClientInfo(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	text := seen.String() + stop()

	names := make(map[string]string) // short ID -> name, over all frames and events
	for _, m := range shortIDName.FindAllStringSubmatch(text, -1) {
		if prev, ok := names[m[1]]; ok && prev != m[2] {
			t.Errorf("%s is named %s and %s", m[1], prev, m[2])
		}
		names[m[1]] = m[2]
	}
	if len(names) != cfg.Clients {
		t.Errorf("the output names %d clients by short ID, want %d: %v", len(names), cfg.Clients, names)
	}
	paidFound := false
	for id, info := range infos {
		name, ok := names[topview.ShortID(id)]
		if !ok {
			t.Errorf("client %s listed over RPC is not in the view", id)
		}
		if info.PosBalance > 0 {
			paidFound = true
			if name != "paid-1" {
				t.Errorf("the client with tokens (%s) is shown as %q, want paid-1", id, name)
			}
		}
	}
	if !paidFound {
		t.Errorf("no client listed over RPC has tokens: %v", infos)
	}

	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^devnet: 1 server, 4 clients \(1 paid`),
		regexp.MustCompile(`rpc     ` + regexp.QuoteMeta(cfg.IPCPath)),
		regexp.MustCompile(`\n\nvflux top  devnet  `),
		regexp.MustCompile(`\n  ID\s+NAME\s+STATE\s+CAPACITY  POS BALANCE`),
		regexp.MustCompile(`\nstatus   (FULL by count|FULL by capacity|room for)`),
		regexp.MustCompile(`\n  [0-9a-f]{8}  free-\d\s+(active|inactive)\s`),
		regexp.MustCompile(`\n  \d\d:\d\d:\d\d  [0-9a-f]{8}  paid-1  capacityChanged   capacity 2000\n`),
		regexp.MustCompile(`\n  \d\d:\d\d:\d\d  [0-9a-f]{8}  free-\d  disconnected      reason: waiting slots full\n`),
		regexp.MustCompile(`\ndevnet stopped after \d+s\n$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("devnet output does not match %q", want)
		}
	}
	if strings.Contains(text, "\x1b") {
		t.Error("output that is not a terminal carries escape codes")
	}
	if t.Failed() {
		t.Logf("output:\n%s", text)
	}
}

func TestOnATerminalTheDevnetRedrawsEachFrameInPlace(t *testing.T) {
	cfg := DefaultDevnetConfig()
	cfg.Clients, cfg.Paid = 2, 0
	cfg.Progress = 100 * time.Millisecond
	cfg.IPCPath = ""
	cfg.Redraw = true
	writes, stop := startDevnet(t, cfg)
	timeout := deadline()
	for frames := 0; frames < 3; {
		select {
		case w := <-writes:
			// Every frame clears the screen, and the devnet's own lines stay
			// above the view.
			if !strings.HasPrefix(w, "\x1b[H\x1b[2Jdevnet: 1 server, 2 clients") || !strings.Contains(w, "\n\nvflux top  devnet  ") {
				t.Fatalf("a write on a terminal is not a whole frame drawn in place:\n%q", w)
			}
			frames++
		case <-timeout:
			t.Fatal("no frames")
		}
	}
	if text := stop(); !strings.HasSuffix(text, "\ndevnet stopped after 0s\n") {
		t.Errorf("the devnet did not say it stopped below the last frame:\n%q", text)
	}
}

func TestTheDevnetSaysWhenAndWhyEachOfflineClientLeft(t *testing.T) {
	at := time.Date(2026, 12, 4, 8, 10, 0, 0, time.UTC)
	sec := func(n int) time.Time { return at.Add(time.Duration(n) * time.Second) }
	tooMany := errors.New("too many peers")
	d := &Devnet{cfg: DevnetConfig{Redial: 2 * time.Second}}
	for i, name := range []string{"paid-1", "free-2", "free-3", "free-4", "free-5", "free-6", "free-10"} {
		c := &devClient{name: name}
		c.id[0], c.id[1] = 0xab, byte(i)
		d.clients = append(d.clients, c)
	}
	d.clients[1].left = topview.Event{Time: at, Type: "disconnected", Reason: "inactive allowance ended"}
	d.clients[2].left = topview.Event{Time: at, Type: "disconnected"}
	// A dial after it left that the pool never saw.
	d.clients[3].left = topview.Event{Time: at, Type: "disconnected", Reason: "evicted by priority"}
	d.clients[3].dialFailed.Store(&dialFailure{started: sec(1), at: sec(2), err: tooMany})
	// Dials the pool took in and let go: its reason, else the dial's error.
	d.clients[4].left = topview.Event{Time: sec(1), Type: "disconnected", Reason: "waiting slots full"}
	d.clients[4].dialFailed.Store(&dialFailure{started: at, at: sec(1), err: tooMany})
	d.clients[5].left = topview.Event{Time: sec(1), Type: "disconnected"}
	d.clients[5].dialFailed.Store(&dialFailure{started: at, at: sec(1), err: tooMany})
	connected := []topview.Client{{ID: d.clients[0].id.String()}}

	want := `
offline  dialling again 2s after they left or failed
  ab010000  free-2   left 08:10:00: inactive allowance ended
  ab020000  free-3   left 08:10:00
  ab030000  free-4   dial failed 08:10:02: too many peers
  ab040000  free-5   turned away 08:10:01: waiting slots full
  ab050000  free-6   turned away 08:10:01: too many peers
  ab060000  free-10  not connected yet
`
	if got := d.offline(connected); got != want {
		t.Errorf("offline clients:\n%s\nwant:\n%s", got, want)
	}
	for _, c := range d.clients[1:] {
		connected = append(connected, topview.Client{ID: c.id.String()})
	}
	if got := d.offline(connected); got != "" {
		t.Errorf("an offline section with every client connected:\n%s", got)
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

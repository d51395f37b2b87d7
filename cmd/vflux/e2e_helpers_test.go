package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
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

// e2eBin is the vflux binary TestMain builds once for the process tests.
var e2eBin string

// e2eTimeout bounds every wait on a process (start, log line, exit).
const e2eTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vflux-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	e2eBin = filepath.Join(dir, "vflux")
	// Under -race the binary is built with -race too: its packages are then
	// already in the build cache from the test binary, so only the link is
	// paid, and the node processes (the crash test kills them) run under the
	// race detector.
	args := []string{"build", "-o", e2eBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// The processes' default data directory (~/.vflux, where client commands
	// keep their key) lies in a home of the test's own, never the user's.
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: home dir:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	os.Setenv("HOME", home)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eDir returns a short temporary directory (IPC socket paths are limited
// to about 100 bytes, and t.TempDir paths can be longer).
func e2eDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vfe2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// logWatch collects a process's output line by line and lets a test wait for
// a line with a deadline.
type logWatch struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced on every new line
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (w *logWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, b...)
	added := false
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, string(w.partial[:i]))
		w.partial = w.partial[i+1:]
		added = true
	}
	if added {
		close(w.changed)
		w.changed = make(chan struct{})
	}
	return len(b), nil
}

// find returns the index of the first line at or after from containing s.
func (w *logWatch) find(from int, s string) (int, chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := from; i < len(w.lines); i++ {
		if strings.Contains(w.lines[i], s) {
			return i, nil
		}
	}
	return -1, w.changed
}

// count returns the number of lines so far.
func (w *logWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lines)
}

// tail returns the last n lines, for failure messages.
func (w *logWatch) tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	from := max(0, len(w.lines)-n)
	return strings.Join(w.lines[from:], "\n")
}

// String returns the whole output so far.
func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n") + "\n" + string(w.partial)
}

// wait waits until a line matches re and returns the first group (or the
// whole match when re has none); it fails the test at the deadline or when the
// process exits first.
func (w *logWatch) wait(t *testing.T, re *regexp.Regexp, exited <-chan struct{}) string {
	t.Helper()
	deadline := time.After(e2eTimeout)
	for from := 0; ; {
		w.mu.Lock()
		lines, changed := w.lines[from:], w.changed
		w.mu.Unlock()
		for _, line := range lines {
			if m := re.FindStringSubmatch(line); m != nil {
				if len(m) > 1 {
					return m[1]
				}
				return m[0]
			}
		}
		from += len(lines)
		select {
		case <-changed:
		case <-exited:
			t.Fatalf("process exited before printing %q:\n%s", re, w.String())
		case <-deadline:
			t.Fatalf("no output matching %q within %v:\n%s", re, e2eTimeout, w.String())
		}
	}
}

// e2eProc is a running vflux process whose output a test watches. It is
// killed at cleanup if still running, and its output logged if the test
// failed.
type e2eProc struct {
	what    string // names the process in failure messages
	cmd     *exec.Cmd
	out     *logWatch
	exited  chan struct{}
	exitErr error
}

// startE2EProc runs the binary with args.
func startE2EProc(t *testing.T, what string, args ...string) *e2eProc {
	t.Helper()
	p := &e2eProc{what: what, out: newLogWatch(), exited: make(chan struct{})}
	p.cmd = exec.Command(e2eBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			if t.Failed() {
				// A process still running when its test failed may be
				// stuck: SIGQUIT makes the Go runtime print every
				// goroutine's stack into its output before it exits.
				p.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-p.exited:
				case <-time.After(5 * time.Second):
				}
			}
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.what, p.out.String())
		}
	})
	return p
}

// exitCode waits for the process to end and returns its exit code.
func (p *e2eProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(e2eTimeout):
		t.Fatalf("%s did not exit within %v:\n%s", p.what, e2eTimeout, p.out.String())
	}
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return ee.ExitCode()
	}
	if p.exitErr != nil {
		t.Fatal(p.exitErr)
	}
	return 0
}

// interrupt sends SIGINT and waits for a clean exit.
func (p *e2eProc) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t); code != 0 {
		t.Fatalf("%s exited with %d after SIGINT, want 0:\n%s", p.what, code, p.out.String())
	}
}

func (p *e2eProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// e2eNode is a running `vflux` node process.
type e2eNode struct {
	*e2eProc
	datadir string
	enr     string
	enode   string
}

var (
	enrRe   = regexp.MustCompile(`vflux node started\s+enr=(enr:\S+)`)
	enodeRe = regexp.MustCompile(`enode="?(enode://[0-9a-f]+@[0-9.]+:\d+(\?discport=\d+)?)"?`)
)

// startE2ENode runs the binary as a node on 127.0.0.1 with a random port and
// the given datadir, and waits until it logged its ENR.
func startE2ENode(t *testing.T, datadir string, args ...string) *e2eNode {
	t.Helper()
	full := append([]string{"--datadir", datadir, "--port", "0", "--addr", "127.0.0.1"}, args...)
	n := &e2eNode{e2eProc: startE2EProc(t, "node", full...), datadir: datadir}
	n.enr = n.out.wait(t, enrRe, n.exited)
	n.enode = n.out.wait(t, enodeRe, n.exited)
	return n
}

// watchE2ENode dials the node process in dir over IPC and subscribes to its
// pool events; both end at cleanup.
func watchE2ENode(t *testing.T, dir string) (*vfnode.RPCClient, <-chan vfnode.Event) {
	t.Helper()
	rpcc, err := vfnode.DialRPC(context.Background(), filepath.Join(dir, params.DefaultIPCName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rpcc.Close)
	events := make(chan vfnode.Event, 64)
	sub, err := rpcc.SubscribeEvents(context.Background(), events)
	if err != nil {
		t.Fatalf("vflux_subscribe over IPC: %v", err)
	}
	t.Cleanup(sub.Unsubscribe)
	return rpcc, events
}

// waitEvent waits for a pool event of the given type about id (any client
// if id is zero).
func waitEvent(t *testing.T, events <-chan vfnode.Event, typ string, id enode.ID) vfnode.Event {
	t.Helper()
	timeout := time.After(e2eTimeout)
	for {
		select {
		case ev := <-events:
			if ev.Type == typ && (id == enode.ID{} || ev.ID == id.String()) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event for %s within %v", typ, id.TerminalString(), e2eTimeout)
		}
	}
}

// runVflux runs a vflux subcommand and returns stdout, stderr and the error.
func runVflux(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// e2eClient is a real RLPx client (protocol.Client) of a node process.
type e2eClient struct {
	id enode.ID
	cl *protocol.Client
}

// dialE2EClient starts a client p2p server, calls before with its node ID
// (to fund it, say; nil: nothing) and connects it to the node, without
// waiting for capacity.
func dialE2EClient(t *testing.T, nodeURL string, before func(enode.ID)) *e2eClient {
	t.Helper()
	server, err := enode.Parse(enode.ValidSchemes, nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	peers := protocol.NewClientPeers()
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{
		Protocols: []p2p.Protocol{peers.Protocol()}, NoDiscovery: true, NoListen: true,
	})
	c := &e2eClient{id: srv.Self().ID()}
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

// connectE2EClient connects a protocol.Client to the node process and waits
// until it holds capacity.
func connectE2EClient(t *testing.T, nodeURL string) *protocol.Client {
	t.Helper()
	cl := dialE2EClient(t, nodeURL, nil).cl
	deadline := time.After(e2eTimeout)
	for cl.Capacity() == 0 {
		select {
		case <-cl.Updates():
		case <-cl.Done():
			t.Fatalf("client disconnected: %v", cl.DisconnectReason())
		case <-deadline:
			t.Fatal("client got no capacity")
		}
	}
	return cl
}

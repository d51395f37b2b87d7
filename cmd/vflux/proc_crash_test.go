package main

// Helpers of the process-level crash tests (crash_test.go; the binary is the
// one TestMain builds): running it as a node process that the test can SIGKILL, reading its
// log with deadlines, talking to it over IPC and reading its balance LevelDB
// while it is down.

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethdb/leveldb"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/vflux-net/vflux/clientpool"
	vfnode "github.com/vflux-net/vflux/node"
	"github.com/vflux-net/vflux/params"
)

// procTimeout bounds every wait on a node process (start, RPC, exit). A
// race-instrumented binary on two busy cores needs several seconds to start.
const procTimeout = 60 * time.Second

// nodeProc is one run of the vflux binary as a serving node.
type nodeProc struct {
	t         *testing.T
	datadir   string
	cmd       *exec.Cmd
	log       *logWatch
	exited    chan struct{}
	killing   atomic.Bool  // set before SIGKILL: RPC errors from then on are expected
	topUps    atomic.Int64 // acknowledged top-ups (churn test statistics)
	topUpTime atomic.Int64 // their total RPC time in ns
	rpc       *vfnode.RPCClient
	self      *enode.Node
}

// crashNodeArgs are the node flags of every process in these tests: loopback
// only, a free port, no discovery (the clients use RLPx), 20 active clients.
func crashNodeArgs(datadir string) []string {
	return []string{
		"--datadir", datadir, "--addr", "127.0.0.1", "--port", "0", "--nodiscover",
		"--vflux.serve", "--vflux.maxclients", "20", "--vflux.inactive", "2s", "--verbosity", "3",
	}
}

// startNodeProc starts the binary and waits until the node has started and
// answers on IPC. The process is SIGKILLed at cleanup if it still runs.
func startNodeProc(t *testing.T, bin, datadir string, extra ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{t: t, datadir: datadir, log: newLogWatch(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append(crashNodeArgs(datadir), extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if p.rpc != nil {
			p.rpc.Close()
		}
	})
	p.waitLog(0, "vflux node started", procTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	c, err := rpc.DialContext(ctx, filepath.Join(datadir, params.DefaultIPCName))
	if err != nil {
		t.Fatalf("dial node IPC: %v\n%s", err, p.log.tail(20))
	}
	var info p2p.NodeInfo
	if err := c.CallContext(ctx, &info, "admin_nodeInfo"); err != nil {
		c.Close()
		t.Fatalf("admin_nodeInfo: %v", err)
	}
	if p.self, err = enode.ParseV4(info.Enode); err != nil {
		c.Close()
		t.Fatalf("node's enode %q: %v", info.Enode, err)
	}
	p.rpc = vfnode.NewRPCClient(c)
	return p
}

// waitLog waits for a log line containing s at or after line from and
// returns its index; it fails the test at the deadline or when the process
// exits first.
func (p *nodeProc) waitLog(from int, s string, timeout time.Duration) int {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		i, changed := p.log.find(from, s)
		if i >= 0 {
			return i
		}
		select {
		case <-changed:
		case <-p.exited:
			if i, _ := p.log.find(from, s); i >= 0 {
				return i
			}
			p.t.Fatalf("node exited (%v) before logging %q:\n%s", p.cmd.ProcessState, s, p.log.tail(30))
		case <-deadline:
			p.t.Fatalf("no log line %q within %v:\n%s", s, timeout, p.log.tail(30))
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *nodeProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.killing.Store(true)
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(procTimeout):
		p.t.Errorf("node process %d did not exit after SIGKILL", p.cmd.Process.Pid)
	}
}

// runCLI runs a vflux subcommand and returns its standard output.
func runCLI(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("vflux %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// posBalance reads one client's positive balance over the node's RPC.
func (p *nodeProc) posBalance(id enode.ID) uint64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	infos, err := p.rpc.ClientInfo(ctx, id.String())
	if err != nil {
		p.t.Fatalf("clientInfo %s: %v", id.TerminalString(), err)
	}
	info, ok := infos[id.String()]
	if !ok {
		p.t.Fatalf("clientInfo has no entry for %s: %v", id.TerminalString(), infos)
	}
	return info.PosBalance
}

// totalTokens reads vflux_serverInfo's token total.
func (p *nodeProc) totalTokens() uint64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	info, err := p.rpc.ServerInfo(ctx)
	if err != nil {
		p.t.Fatalf("serverInfo: %v", err)
	}
	return info.TotalTokens
}

// addBalance tops a client up over RPC.
func (p *nodeProc) addBalance(ctx context.Context, id enode.ID, amount uint64) (oldBal, newBal uint64, err error) {
	return p.rpc.AddBalance(ctx, id.String(), new(big.Int).SetUint64(amount))
}

// ----- the balance database, read while the node is down -----

// balanceDBPath is where the node keeps its balance LevelDB (SPEC 6):
// <datadir>/<node name>/vflux.
func balanceDBPath(datadir string) string {
	return filepath.Join(datadir, params.DefaultNodeName, params.DataDirName)
}

// Key layout of SPEC 2.5, written out here from the spec so the test reads
// the database as an independent observer.
func schemaKey(kind string, id []byte) []byte {
	k := []byte{byte(params.DBVersion >> 8), byte(params.DBVersion)}
	k = append(k, kind...)
	return append(k, id...)
}

// storedBalances is what a stopped node's database holds.
type storedBalances struct {
	pos     map[enode.ID]uint64 // positive balances at the stored offset
	sum     uint64
	corrupt int // positive balance records that do not decode
}

// readStoredBalances opens the balance database read-only (it must open after
// any crash) and reads every positive balance.
func readStoredBalances(t *testing.T, datadir string) storedBalances {
	t.Helper()
	db, err := leveldb.New(balanceDBPath(datadir), 16, 16, "", true)
	if err != nil {
		t.Fatalf("open balance database after the crash: %v", err)
	}
	defer db.Close()
	var offsets struct{ Pos, Neg uint64 }
	if enc, err := db.Get(schemaKey("exp:", nil)); err == nil {
		if err := rlp.DecodeBytes(enc, &offsets); err != nil {
			t.Fatalf("stored expiration offsets do not decode: %v", err)
		}
	}
	res := storedBalances{pos: make(map[enode.ID]uint64)}
	prefix := schemaKey("pb:", nil)
	it := db.NewIterator(prefix, nil)
	defer it.Release()
	for it.Next() {
		var id enode.ID
		if len(it.Key()) != len(prefix)+len(id) {
			t.Fatalf("positive balance key of length %d: %x", len(it.Key()), it.Key())
		}
		copy(id[:], it.Key()[len(prefix):])
		var v clientpool.ExpiredValue
		if err := rlp.DecodeBytes(it.Value(), &v); err != nil {
			res.corrupt++
			continue
		}
		val := v.Value(clientpool.LogOffset(offsets.Pos))
		res.pos[id] = val
		res.sum += val
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterate balances: %v", err)
	}
	return res
}

// writeRawRecord writes bytes under a key of the stopped node's database.
func writeRawRecord(t *testing.T, datadir string, key, value []byte) {
	t.Helper()
	db, err := leveldb.New(balanceDBPath(datadir), 16, 16, "", false)
	if err != nil {
		t.Fatalf("open balance database: %v", err)
	}
	defer db.Close()
	if err := db.Put(key, value); err != nil {
		t.Fatalf("write record: %v", err)
	}
}

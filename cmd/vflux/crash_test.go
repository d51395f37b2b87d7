package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/protocol"
	"github.com/vflux-net/vflux/vflux"
)

// Environment knobs of the crash tests:
//
//	VFLUX_CRASH_ROUNDS=20   SIGKILL rounds of the churn test (default 5)
//	VFLUX_CRASH_SEED=n      seed of the kill moments and client behaviour (default: time)
const (
	crashRoundsEnv     = "VFLUX_CRASH_ROUNDS"
	crashSeedEnv       = "VFLUX_CRASH_SEED"
	defaultCrashRounds = 5
)

// TestNodeProcessCrashSafety runs the vflux binary as a serving node and
// kills it with SIGKILL (SPEC 2.5: a paid top-up survives a crash, a crash
// forgives at most one persistence interval of spending, a corrupt record
// never stops the node). The binary is built once for all cases.
func TestNodeProcessCrashSafety(t *testing.T) {
	bin := e2eBin
	t.Run("a balance added with the CLI is there exactly after an immediate SIGKILL", func(t *testing.T) {
		testTopUpSurvivesSIGKILL(t, bin)
	})
	t.Run("fifty churning spending clients lose no top-up across SIGKILLs at random moments", func(t *testing.T) {
		testChurnSurvivesSIGKILL(t, bin)
	})
	t.Run("a corrupted balance record is reported and ignored and the node serves", func(t *testing.T) {
		testCorruptRecordIsIgnored(t, bin)
	})
}

func testTopUpSurvivesSIGKILL(t *testing.T, bin string) {
	dir := e2eDir(t)
	id := randomNodeID(t)
	var want uint64
	for i, amount := range []uint64{123456789, 1, 987654321000, 5} {
		p := startNodeProc(t, bin, dir)
		if got := p.posBalance(id); got != want {
			t.Fatalf("restart %d: balance %d, want %d", i, got, want)
		}
		out, err := runCLI(t, bin, "balance", "add", "--datadir", dir, id.String(), strconv.FormatUint(amount, 10))
		p.kill() // at once: the CLI has returned, so the top-up must be on disk
		if err != nil {
			t.Fatal(err)
		}
		if line := fmt.Sprintf("balance %d -> %d", want, want+amount); !strings.Contains(out, line) {
			t.Fatalf("balance add printed %q, want %q", out, line)
		}
		want += amount
		stored := readStoredBalances(t, dir)
		if stored.pos[id] != want || stored.sum != want {
			t.Fatalf("after SIGKILL the database holds %d (total %d), want %d", stored.pos[id], stored.sum, want)
		}
	}
	p := startNodeProc(t, bin, dir)
	if got, total := p.posBalance(id), p.totalTokens(); got != want || total != want {
		t.Fatalf("after the last restart: balance %d, total %d, want %d", got, total, want)
	}
}

// crashLedger is what the test knows about one client's positive balance in
// the current round: top-ups the node acknowledged and top-ups whose RPC call
// did not return (the kill may or may not have let them land).
type crashLedger struct {
	acked, inflight uint64
}

type churnStats struct {
	connections, refusals, requests, busy, stuck atomic.Int64
}

func testChurnSurvivesSIGKILL(t *testing.T, bin string) {
	const (
		clients     = 50
		paidClients = 25 // the first 25 get top-ups while they churn
		offlineIDs  = 10 // never connect: their balance must match exactly
		topUpAmount = 100_000_000_000
	)
	rounds := envInt(t, crashRoundsEnv, defaultCrashRounds)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", crashSeedEnv, s)
		}
		seed = n
	}
	t.Logf("%d rounds, seed %d (%s=%d to repeat)", rounds, seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	keys := make([]*ecdsa.PrivateKey, clients)
	kinds := make(map[enode.ID]string)
	var topUpIDs []enode.ID
	for i := range keys {
		keys[i] = p2ptest.NewKey(t)
		id := enode.PubkeyToIDV4(&keys[i].PublicKey)
		kinds[id] = "free"
		if i < paidClients {
			kinds[id] = "paid"
			topUpIDs = append(topUpIDs, id)
		}
	}
	for range offlineIDs {
		id := randomNodeID(t)
		kinds[id] = "offline"
		topUpIDs = append(topUpIDs, id)
	}

	dir := e2eDir(t)
	prev := storedBalances{pos: map[enode.ID]uint64{}}
	var (
		stats                   churnStats
		totalAcked, totalSpent  uint64
		tokensLost, unknownLost uint64
		survived                int
	)
	// Spending is bounded by capacity: at most the whole capacity, priced at
	// the default capacity factor plus one token per cost unit served (a
	// client's request cost rate is at most its capacity, plus its buffer).
	cfg := vfnodeDefaults()
	spendPerSec := float64(cfg.maxCap) * (cfg.capFactor/1e6 + cfg.reqFactor)

	for round := 1; round <= rounds; round++ {
		started := time.Now()
		p := startNodeProc(t, bin, dir)
		if total := p.totalTokens(); total != prev.sum {
			t.Fatalf("round %d: after restart TotalTokenAmount is %d, the stored balances sum to %d", round, total, prev.sum)
		}
		requestsBefore := stats.requests.Load()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i, key := range keys {
			wg.Add(1)
			crng := rand.New(rand.NewPCG(seed, uint64(round*1000+i+1)))
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					clientSession(ctx, key, p.self, i < paidClients, crng, &stats)
				}
			}()
		}
		ledger := make(map[enode.ID]*crashLedger)
		for _, id := range topUpIDs {
			ledger[id] = new(crashLedger)
		}
		topUpErr := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			topUpErr <- topUpLoop(ctx, p, topUpIDs, kinds, ledger, prev, rand.New(rand.NewPCG(seed, uint64(round))), topUpAmount)
		}()

		// The kill comes at a random moment once the round has done some
		// work (on a loaded machine a fixed delay could pass before any
		// client got in): after a few top-ups and requests, plus up to 1.5 s.
		waitProgress(t, p, func() bool {
			return p.topUps.Load() >= 3 && stats.requests.Load()-requestsBefore >= 20
		})
		killAfter := time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
		select {
		case <-time.After(killAfter): // the fault: a random moment, not a synchronisation
		case <-p.exited:
			t.Fatalf("round %d: node exited by itself:\n%s", round, p.log.tail(30))
		}
		p.kill()
		elapsed := time.Since(started)
		cancel()
		wg.Wait()
		if err := <-topUpErr; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}

		stored := readStoredBalances(t, dir)
		if stored.corrupt != 0 {
			t.Fatalf("round %d: %d corrupt balance records after SIGKILL", round, stored.corrupt)
		}
		bound := uint64(spendPerSec * (elapsed.Seconds() + params.BufferSecs))
		for id, now := range stored.pos {
			if kinds[id] != "paid" && kinds[id] != "offline" {
				t.Errorf("round %d: %s client %s has a positive balance %d it never got", round, kinds[id], id.TerminalString(), now)
			}
		}
		for _, id := range topUpIDs {
			l, before, now := ledger[id], prev.pos[id], stored.pos[id]
			totalAcked += l.acked
			if upper := before + l.acked + l.inflight; now > upper {
				t.Errorf("round %d: %s balance of %s is %d, above its last persisted value %d plus top-ups %d (+%d unconfirmed)",
					round, kinds[id], id.TerminalString(), now, before, l.acked, l.inflight)
			}
			expected := before + l.acked
			switch kinds[id] {
			case "offline": // nothing spends it: exact, with or without the unconfirmed top-up
				if now != expected && now != expected+l.inflight {
					t.Errorf("round %d: offline balance of %s is %d, want %d (or %d with the unconfirmed top-up)",
						round, id.TerminalString(), now, expected, expected+l.inflight)
				}
				if now < expected {
					tokensLost += expected - now
				}
			case "paid":
				if now+bound < expected {
					t.Errorf("round %d: paid balance of %s is %d: %d persisted + %d topped up - at most %d spent in %v; a top-up was lost",
						round, id.TerminalString(), now, before, l.acked, bound, elapsed)
					unknownLost += expected - bound - now
				}
				if now < expected {
					totalSpent += expected - now
				}
			}
		}
		survived++
		t.Logf("round %d: killed %v after the first 3 top-ups and 20 requests (node up %v): %d top-ups (mean RPC %v) to %d clients, %d connections so far, %d requests, stored total %d",
			round, killAfter.Round(time.Millisecond), elapsed.Round(time.Millisecond), p.topUps.Load(),
			time.Duration(p.topUpTime.Load()/max(1, p.topUps.Load())).Round(time.Microsecond), countAcked(ledger), stats.connections.Load(), stats.requests.Load(), stored.sum)
		prev = stored
	}

	// The last crash too: the database opens and the node agrees with it.
	p := startNodeProc(t, bin, dir)
	if total := p.totalTokens(); total != prev.sum {
		t.Fatalf("after the last restart TotalTokenAmount is %d, the stored balances sum to %d", total, prev.sum)
	}
	t.Logf("crash rounds survived: %d; tokens topped up %d, tokens lost %d (offline, exact) + %d (paid, beyond the spending bound); persisted spending %d; %d connections (%d refused), %d requests (%d busy), %d clients stuck on close",
		survived, totalAcked, tokensLost, unknownLost, totalSpent, stats.connections.Load(), stats.refusals.Load(),
		stats.requests.Load(), stats.busy.Load(), stats.stuck.Load())
	if stats.connections.Load() == 0 || stats.requests.Load() == 0 || totalAcked == 0 {
		t.Fatal("the churn did nothing: no connection, request or top-up")
	}
	if totalSpent == 0 {
		t.Error("no spending was ever persisted: the test did not exercise spending")
	}
	if stats.stuck.Load() != 0 {
		t.Errorf("%d client connections did not end after Close", stats.stuck.Load())
	}
}

// topUpLoop tops up random clients until ctx ends or the node dies, keeping
// the ledger. For an offline client the node's "old" value is known exactly.
func topUpLoop(ctx context.Context, p *nodeProc, ids []enode.ID, kinds map[enode.ID]string, ledger map[enode.ID]*crashLedger,
	prev storedBalances, rng *rand.Rand, amount uint64) error {
	for ctx.Err() == nil {
		id := ids[rng.IntN(len(ids))]
		amt := amount + rng.Uint64N(1_000_000_000)
		l := ledger[id]
		l.inflight += amt
		cctx, cancel := context.WithTimeout(ctx, procTimeout)
		t0 := time.Now()
		oldBal, newBal, err := p.addBalance(cctx, id, amt)
		p.topUpTime.Add(int64(time.Since(t0)))
		cancel()
		if err != nil {
			if p.killing.Load() || ctx.Err() != nil {
				// Killed: the call's outcome is unknown and stays in flight.
				return nil
			}
			return fmt.Errorf("addBalance while the node runs: %w", err)
		}
		l.inflight -= amt
		l.acked += amt
		p.topUps.Add(1)
		if newBal != oldBal+amt {
			return fmt.Errorf("addBalance %d to %s returned %d -> %d", amt, id.TerminalString(), oldBal, newBal)
		}
		if kinds[id] == "offline" && oldBal != prev.pos[id]+l.acked-amt {
			return fmt.Errorf("offline %s had %d before a top-up, want %d", id.TerminalString(), oldBal, prev.pos[id]+l.acked-amt)
		}
	}
	return nil
}

// clientSession connects one client (a fresh p2p.Server with the client's
// key: go-ethereum will not redial a node it dialled in the last 35 s from
// the same server), sends capacity queries so it spends, maybe asks a paid
// client's capacity up, and leaves.
func clientSession(ctx context.Context, key *ecdsa.PrivateKey, server *enode.Node, paid bool, rng *rand.Rand, stats *churnStats) {
	peers := protocol.NewClientPeers()
	srv := &p2p.Server{Config: p2p.Config{
		PrivateKey: key, MaxPeers: 1, NoDiscovery: true, Name: "crash-client",
		Protocols: []p2p.Protocol{peers.Protocol()},
	}}
	if err := srv.Start(); err != nil {
		return
	}
	defer srv.Stop()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cl, err := peers.Dial(dctx, srv, server)
	cancel()
	if err != nil {
		stats.refusals.Add(1)
		pause(ctx, time.Duration(20+rng.IntN(100))*time.Millisecond)
		return
	}
	stats.connections.Add(1)
	var reqs vflux.Requests
	cq := vflux.CapacityQueryReq{AddTokens: make([]vflux.IntOrInf, 1)}
	cq.AddTokens[0].SetInt64(1_000_000_000)
	reqs.Add(params.ServiceName, vflux.CapacityQueryName, &cq)
	for n := 1 + rng.IntN(20); n > 0 && ctx.Err() == nil; n-- {
		_, err := cl.Vflux(ctx, reqs)
		var busy *protocol.BusyError
		switch {
		case err == nil:
			stats.requests.Add(1)
		case errors.As(err, &busy):
			stats.busy.Add(1)
			pause(ctx, busy.Wait) // the server's pacing, as a real client obeys it
		default:
			n = 0 // disconnected
		}
	}
	if paid && rng.IntN(3) == 0 {
		cl.RequestCapacity(ctx, 3*params.DefaultMinCap, 0)
	}
	cl.Close()
	select {
	case <-cl.Done():
	case <-time.After(procTimeout):
		stats.stuck.Add(1)
	}
}

// waitProgress waits until cond holds, failing the test if the node exits or
// procTimeout passes first.
func waitProgress(t *testing.T, p *nodeProc, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(procTimeout)
	for !cond() {
		select {
		case <-tick.C: // polling counters that the clients advance
		case <-p.exited:
			t.Fatalf("node exited by itself:\n%s", p.log.tail(30))
		case <-deadline:
			t.Fatalf("no progress within %v (%d top-ups)", procTimeout, p.topUps.Load())
		}
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// crashPricing is the part of the node's default configuration the spending
// bound needs.
type crashPricing struct {
	maxCap               uint64
	capFactor, reqFactor float64 // edge units: per second per 1e6 capacity; per cost unit
}

// vfnodeDefaults returns the pricing of crashNodeArgs' node: 20 clients at the
// default minCap and capacity multiplier, default prices.
func vfnodeDefaults() crashPricing {
	return crashPricing{
		maxCap:    20 * params.DefaultMinCap * params.DefaultCapacityPerClient,
		capFactor: params.DefaultCapacityFactor,
		reqFactor: params.DefaultRequestFactor,
	}
}

func testCorruptRecordIsIgnored(t *testing.T, bin string) {
	dir := e2eDir(t)
	good, bad := randomNodeID(t), p2ptest.NewKey(t)
	badID := enode.PubkeyToIDV4(&bad.PublicKey)

	// A node writes two balances and stops; then garbage replaces one record.
	p := startNodeProc(t, bin, dir)
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	for _, id := range []enode.ID{good, badID} {
		if _, _, err := p.addBalance(ctx, id, 5_000_000_000); err != nil {
			t.Fatal(err)
		}
	}
	p.kill()
	garbage := []byte{0xff, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef}
	writeRawRecord(t, dir, schemaKey("pb:", badID[:]), garbage)
	if s := readStoredBalances(t, dir); s.corrupt != 1 || s.sum != 5_000_000_000 {
		t.Fatalf("the database should hold one corrupt and one good record, got %d corrupt, total %d", s.corrupt, s.sum)
	}

	p = startNodeProc(t, bin, dir)
	p.waitLog(0, "Corrupt positive balances", procTimeout) // reported at start
	if total := p.totalTokens(); total != 5_000_000_000 {
		t.Errorf("TotalTokenAmount %d counts the corrupt record, want 5000000000", total)
	}
	if got := p.posBalance(badID); got != 0 {
		t.Errorf("the corrupt balance reads as %d, want 0", got)
	}
	if got := p.posBalance(good); got != 5_000_000_000 {
		t.Errorf("the good balance reads as %d, want 5000000000", got)
	}
	// The client whose record is corrupt connects and is served as a free client.
	peers := protocol.NewClientPeers()
	srv := &p2p.Server{Config: p2p.Config{PrivateKey: bad, MaxPeers: 1, NoDiscovery: true, Name: "crash-client",
		Protocols: []p2p.Protocol{peers.Protocol()}}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cl, err := peers.Dial(ctx, srv, p.self)
	if err != nil {
		t.Fatalf("the client with the corrupt record cannot connect: %v", err)
	}
	waitClientCapacity(t, cl, params.DefaultMinCap)
	// A top-up replaces the garbage and survives the next crash.
	if _, newBal, err := p.addBalance(ctx, badID, 7); err != nil || newBal != 7 {
		t.Fatalf("top-up of the corrupt balance: %d, %v; want 7", newBal, err)
	}
	cl.Close()
	<-cl.Done()
	p.kill()
	if s := readStoredBalances(t, dir); s.corrupt != 0 || s.sum > 5_000_000_007 || s.pos[good] != 5_000_000_000 {
		t.Fatalf("after the top-up: %d corrupt records, total %d, good balance %d", s.corrupt, s.sum, s.pos[good])
	}
	p = startNodeProc(t, bin, dir)
	if total := p.totalTokens(); total > 5_000_000_007 || total < 5_000_000_000 {
		t.Fatalf("after restart the total is %d, want 5000000000 plus what is left of 7", total)
	}
}

func waitClientCapacity(t *testing.T, cl *protocol.Client, want uint64) {
	t.Helper()
	deadline := time.After(procTimeout)
	for cl.Capacity() != want {
		select {
		case <-cl.Updates():
		case <-cl.Done():
			t.Fatalf("client disconnected (%v) while waiting for capacity %d", cl.DisconnectReason(), want)
		case <-deadline:
			t.Fatalf("capacity is %d, want %d", cl.Capacity(), want)
		}
	}
}

func countAcked(ledger map[enode.ID]*crashLedger) (n int) {
	for _, l := range ledger {
		if l.acked > 0 {
			n++
		}
	}
	return n
}

func randomNodeID(t *testing.T) enode.ID {
	key := p2ptest.NewKey(t)
	return enode.PubkeyToIDV4(&key.PublicKey)
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return n
}

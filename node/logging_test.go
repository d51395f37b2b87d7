package node

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/log"
	"github.com/vflux-net/vflux/topview"
)

// logCapture is a log handler that keeps every record, for tests to wait on.
type logCapture struct {
	mu      sync.Mutex
	records []slog.Record
	changed chan struct{} // closed and replaced on every record
}

func newLogCapture() *logCapture { return &logCapture{changed: make(chan struct{})} }

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCapture) WithGroup(string) slog.Handler            { return c }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r.Clone())
	close(c.changed)
	c.changed = make(chan struct{})
	return nil
}

// attrs renders a record's attributes as key -> text.
func attrs(r slog.Record) map[string]string {
	m := make(map[string]string)
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

// wait returns the first record (after index from) with message msg whose
// attributes include want, and its index; it fails the test at the deadline.
func (c *logCapture) wait(t *testing.T, from int, msg string, want map[string]string) (map[string]string, int) {
	t.Helper()
	timeout := deadline()
	for {
		c.mu.Lock()
		recs, changed := c.records, c.changed
		c.mu.Unlock()
	next:
		for i := from; i < len(recs); i++ {
			if recs[i].Message != msg {
				continue
			}
			got := attrs(recs[i])
			for k, v := range want {
				if !strings.Contains(got[k], v) {
					continue next
				}
			}
			return got, i
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no log record %q with %v; the log:\n%s", msg, want, c.dump())
		}
	}
}

func (c *logCapture) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, r := range c.records {
		fmt.Fprintf(&b, "%s %s %v\n", r.Level, r.Message, attrs(r))
	}
	return b.String()
}

func TestTheLogTellsEachClientsStoryAtInfo(t *testing.T) {
	cfg := testConfig(1)
	cfg.InactiveAllowance = 0 // a deactivated free client is dropped at once
	logs := newLogCapture()
	n := startNodeWith(t, cfg, "", true, func(s *Service) {
		s.log = log.NewLogger(logs)
	})
	ctx := context.Background()

	free := mustDial(t, n)
	waitCapacity(t, free, cfg.MinCap)
	freeID := topview.ShortID(free.srv.Self().ID().String())
	_, i := logs.wait(t, 0, "Client connected", map[string]string{"client": freeID})
	logs.wait(t, i, "Client activated", map[string]string{"client": freeID, "capacity": "1000"})

	paid, _ := newClientKey(t)
	paidID := paid.Self().ID()
	if _, _, err := n.api.AddBalance(ctx, paidID.String(), big.NewInt(1e15)); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, 0, "Balance changed", map[string]string{"client": topview.ShortID(paidID.String()), "balance": "0 -> 1000000000000000"})

	// The paid client takes the only slot: the free one is deactivated and,
	// with no allowance, dropped.
	pc := dialWith(t, n, paid)
	waitCapacity(t, pc, cfg.MinCap)
	_, i = logs.wait(t, 0, "Client deactivated", map[string]string{"client": freeID, "reason": "evicted by priority"})
	logs.wait(t, i, "Client disconnected", map[string]string{"client": freeID, "reason": "inactive allowance ended"})

	if err := n.api.SetLimits(ctx, 2, 5000); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, 0, "Limits changed over RPC", map[string]string{"maxclients": "1 -> 2", "capacity": "10000 -> 5000"})

	pc.cl.Close()
	logs.wait(t, 0, "Client disconnected", map[string]string{"client": topview.ShortID(paidID.String()), "reason": "peer left"})
}

func TestAWaitingClientDroppedForANewcomerIsLoggedAsSuch(t *testing.T) {
	cfg := testConfig(1) // a minute of allowance: nobody's allowance ends here
	cfg.MaxInactive = 2  // one waiting client, one slot kept free for a newcomer
	logs := newLogCapture()
	n := startNodeWith(t, cfg, "", true, func(s *Service) { s.log = log.NewLogger(logs) })
	waitCapacity(t, mustDial(t, n), cfg.MinCap)
	mustDial(t, n) // waits without capacity
	eventually(t, "one waiting client", func() bool { return n.svc.Pool().Inactive() == 1 })
	// The newcomer takes the free slot; the lowest-ranked waiting client
	// (either, both free) is dropped to keep one free.
	dialClient(t, n)
	got, _ := logs.wait(t, 0, "Client disconnected", nil)
	if got["reason"] != "waiting slots full" {
		t.Errorf("the dropped waiting client's reason is %q, want %q", got["reason"], "waiting slots full")
	}
}

func TestTheStatusLineComesEveryMinuteWithThatMinutesRequests(t *testing.T) {
	clock := &mclock.Simulated{}
	cfg := testConfig(7)
	cfg.Clock = clock
	logs := newLogCapture()
	armed := make(chan struct{})
	startNodeWith(t, cfg, "", true, func(s *Service) {
		s.log = log.NewLogger(logs)
		s.statusArmed = armed
	})
	waitArmed := func() {
		t.Helper()
		select {
		case <-armed:
		case <-deadline():
			t.Fatal("the status timer was not armed")
		}
	}
	waitArmed()
	talkServedMeter.Mark(5)
	talkDroppedMeter.Mark(1)
	clock.Run(statusInterval)
	got, i := logs.wait(t, 0, "vflux status", nil)
	want := map[string]string{"active": "0/7", "inactive": "0", "capacity": "0/70000 (0.0%)", "full": "false", "served/min": "5", "dropped/min": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("first status line: %s=%q, want %q (%v)", k, got[k], v, got)
		}
	}
	waitArmed()
	talkDroppedMeter.Mark(2)
	clock.Run(statusInterval)
	got, _ = logs.wait(t, i+1, "vflux status", nil)
	if got["served/min"] != "0" || got["dropped/min"] != "2" {
		t.Errorf("second status line counts %s served, %s dropped; want only the last minute's 0 and 2", got["served/min"], got["dropped/min"])
	}
}

func TestStatusSaysFullWhenNoNewcomerFits(t *testing.T) {
	cfg := testConfig(1)
	logs := newLogCapture()
	n := startNodeWith(t, cfg, "", true, func(s *Service) { s.log = log.NewLogger(logs) })
	waitCapacity(t, mustDial(t, n), cfg.MinCap)
	n.svc.logStatus(requestCounts{})
	got, _ := logs.wait(t, 0, "vflux status", nil)
	if got["full"] != "true" || got["active"] != "1/1" {
		t.Errorf("status with the only slot taken: %v; want active 1/1, full true", got)
	}
}

package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/log"
)

// matching returns the records at level (e.g. "INFO") that contain every text.
func (h *recordingHandler) matching(level string, texts ...string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
next:
	for _, r := range h.records {
		if !strings.HasPrefix(r, level+" ") {
			continue
		}
		for _, text := range texts {
			if !strings.Contains(r, text) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// wantRecord fails unless exactly one record at level contains every text.
func wantRecord(t *testing.T, h *recordingHandler, level string, texts ...string) {
	t.Helper()
	if got := h.matching(level, texts...); len(got) != 1 {
		h.mu.Lock()
		all := strings.Join(h.records, "\n")
		h.mu.Unlock()
		t.Errorf("%d %s records with %q, want 1; log:\n%s", len(got), level, texts, all)
	}
}

// startLogged starts a node like startNode and returns what was logged while
// it started (node.New logs through the default logger) and, once it runs,
// what the service logs.
func startLogged(t *testing.T, cfg Config, datadir string) (*testNode, *recordingHandler) {
	t.Helper()
	rec := &recordingHandler{}
	prev := log.Root()
	log.SetDefault(log.NewLogger(rec))
	n := startNode(t, cfg, datadir, true)
	log.SetDefault(prev)
	n.svc.mu.Lock()
	n.svc.log = log.NewLogger(rec)
	n.svc.mu.Unlock()
	return n, rec
}

// stopNode stops a node started by startNode, so another can open its datadir.
func stopNode(t *testing.T, n *testNode) {
	t.Helper()
	n.api.Close()
	if err := n.stack.Close(); err != nil {
		t.Fatal(err)
	}
}

func serverInfo(t *testing.T, n *testNode) *ServerInfo {
	t.Helper()
	info, err := n.api.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestSettingsChangedOverRPCSurviveARestartAndWinOverTheConfig(t *testing.T) {
	ctx := context.Background()
	datadir := t.TempDir()
	first := testConfig(4)
	n, rec := startLogged(t, first, datadir)
	capacity := 7 * first.MinCap * 3
	if err := n.api.SetLimits(ctx, 7, capacity); err != nil {
		t.Fatal(err)
	}
	if err := n.api.SetConnectedBias(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if err := n.api.SetDefaultParams(ctx, map[string]interface{}{keyTimeFactor: 0.37, keyNegRequestFactor: 2.5}); err != nil {
		t.Fatal(err)
	}
	// Each setter says what changed, old -> new.
	wantRecord(t, rec, "INFO", "Limits changed over RPC", "maxclients=4 -> 7", "capacity=40000 -> 21000")
	wantRecord(t, rec, "INFO", "Connected bias changed over RPC", "bias=3m0s -> 42s")
	wantRecord(t, rec, "INFO", "Default prices changed over RPC", keyTimeFactor+"=0 -> 0.37", keyNegRequestFactor+"=1 -> 2.5")
	if got := rec.matching("INFO", "Default prices changed", keyCapacityFactor); len(got) != 0 {
		t.Errorf("an unchanged price is logged as changed: %q", got)
	}
	stopNode(t, n)

	// A new node on the same datadir, with other flags.
	second := testConfig(10)
	second.ConnectedBias = time.Minute
	second.PosPrices.Time = 5
	n, rec = startLogged(t, second, datadir)
	info := serverInfo(t, n)
	if info.MaxCount != 7 || info.MaxCap != capacity {
		t.Errorf("limits after the restart (%d, %d), want the ones set over RPC (7, %d)", info.MaxCount, info.MaxCap, capacity)
	}
	if info.ConnectedBias != 42 {
		t.Errorf("bias after the restart %v s, want 42", info.ConnectedBias)
	}
	want := pricesParams(first.PosPrices, first.NegPrices) // the whole set in effect after the RPC call
	want[keyTimeFactor], want[keyNegRequestFactor] = 0.37, 2.5
	for k, v := range want {
		if info.DefaultParams[k] != v {
			t.Errorf("default %s after the restart %v, want %v", k, info.DefaultParams[k], v)
		}
	}
	// Every persisted value that overrides a configured one is logged, and
	// nothing else.
	const overrides = "A setting saved over RPC overrides the configured value"
	wantRecord(t, rec, "INFO", overrides, "key="+settingMaxClients, "configured=10", "persisted=7")
	wantRecord(t, rec, "INFO", overrides, "key="+settingCapacity, "configured=100000", "persisted=21000")
	wantRecord(t, rec, "INFO", overrides, "key="+settingBias, "configured=1m0s", "persisted=42s")
	wantRecord(t, rec, "INFO", overrides, "key="+priceSettings[keyTimeFactor], "configured=5", "persisted=0.37")
	wantRecord(t, rec, "INFO", overrides, "key="+priceSettings[keyNegRequestFactor], "configured=1", "persisted=2.5")
	if got := rec.matching("INFO", overrides); len(got) != 5 {
		t.Errorf("%d override records, want 5: %q", len(got), got)
	}
	wantRecord(t, rec, "INFO", "--vflux.resetsettings", "overrides=5")

	// The pool uses them: a client connecting now gets the restored prices.
	c := mustDial(t, n)
	waitCapacity(t, c, second.MinCap)
	infos, err := n.api.ClientInfo(ctx, c.srv.Self().ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if got := infos[c.srv.Self().ID().String()].Params[keyTimeFactor]; got != 0.37 {
		t.Errorf("a new client's time price %v, want the restored 0.37", got)
	}
}

func TestResetSettingsDiscardsTheSettingsSavedOverRPC(t *testing.T) {
	ctx := context.Background()
	datadir := t.TempDir()
	cfg := testConfig(4)
	n, _ := startLogged(t, cfg, datadir)
	if err := n.api.SetLimits(ctx, 2, cfg.MinCap*2); err != nil {
		t.Fatal(err)
	}
	if err := n.api.SetConnectedBias(ctx, 5); err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)

	reset := cfg
	reset.ResetSettings = true
	n, rec := startLogged(t, reset, datadir)
	check := func(when string) {
		t.Helper()
		info := serverInfo(t, n)
		if info.MaxCount != 4 || info.MaxCap != cfg.TotalCapacity() || info.ConnectedBias != cfg.ConnectedBias.Seconds() {
			t.Errorf("%s: limits (%d, %d), bias %v s; want the configured (4, %d), %v s",
				when, info.MaxCount, info.MaxCap, info.ConnectedBias, cfg.TotalCapacity(), cfg.ConnectedBias.Seconds())
		}
	}
	check("with --vflux.resetsettings")
	wantRecord(t, rec, "INFO", "Discarded the settings saved over RPC")
	if got := rec.matching("INFO", "overrides the configured value"); len(got) != 0 {
		t.Errorf("overrides logged after a reset: %q", got)
	}
	stopNode(t, n)

	// They are gone for good, not just skipped once.
	n, rec = startLogged(t, cfg, datadir)
	check("the start after the reset")
	if got := rec.matching("INFO", "overrides the configured value"); len(got) != 0 {
		t.Errorf("overrides logged after a reset: %q", got)
	}
}

func TestSavedLimitsThatDoNotFitTheConfigAreIgnoredWithAWarning(t *testing.T) {
	ctx := context.Background()
	datadir := t.TempDir()
	cfg := testConfig(4)
	n, _ := startLogged(t, cfg, datadir)
	if err := n.api.SetLimits(ctx, 3, cfg.MinCap); err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)

	bigger := cfg
	bigger.MinCap = cfg.MinCap * 2 // the saved capacity is now below minCap
	n, rec := startLogged(t, bigger, datadir)
	if info := serverInfo(t, n); info.MaxCount != 4 || info.MaxCap != bigger.TotalCapacity() {
		t.Errorf("limits (%d, %d), want the configured (4, %d)", info.MaxCount, info.MaxCap, bigger.TotalCapacity())
	}
	wantRecord(t, rec, "WARN", "Limits saved over RPC do not fit this config", "below minCap")
}

func TestAFailedSettingsWriteIsAnRPCErrorAndKeepsThePreviousValue(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(4)
	n, rec := startLogged(t, cfg, t.TempDir())
	if err := n.api.SetLimits(ctx, 3, cfg.MinCap*3); err != nil {
		t.Fatal(err)
	}
	before := serverInfo(t, n)
	// A closed database fails every write, as a failing disk does.
	if err := n.svc.db.Close(); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"limits", func() error { return n.api.SetLimits(ctx, 2, cfg.MinCap*2) }},
		{"connected bias", func() error { return n.api.SetConnectedBias(ctx, 7) }},
		{"default prices", func() error {
			return n.api.SetDefaultParams(ctx, map[string]interface{}{keyTimeFactor: 3.0})
		}},
	}
	for _, c := range calls {
		err := c.call()
		if err == nil || !strings.Contains(err.Error(), c.name+" not changed") || !strings.Contains(err.Error(), "write saved settings") {
			t.Errorf("set %s on a failing disk: %v, want an error naming the failed write", c.name, err)
		}
	}
	after := serverInfo(t, n)
	if after.MaxCount != before.MaxCount || after.MaxCap != before.MaxCap || after.ConnectedBias != before.ConnectedBias ||
		after.DefaultParams[keyTimeFactor] != before.DefaultParams[keyTimeFactor] {
		t.Errorf("settings after failed writes %+v, want them unchanged from %+v", after, before)
	}
	if got := rec.matching("INFO", "changed over RPC"); len(got) != 1 {
		t.Errorf("failed changes logged as changes: %q", got)
	}
}

package node

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/log"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rpc"
)

// recordingHandler keeps every log record, with its attributes as text.
type recordingHandler struct {
	mu      sync.Mutex
	records []string // "LEVEL message key=value ..."
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, b.String())
	h.mu.Unlock()
	return nil
}

// warnings returns the WARN records that mention text.
func (h *recordingHandler) warnings(text string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if strings.HasPrefix(r, "WARN ") && strings.Contains(r, text) {
			out = append(out, r)
		}
	}
	return out
}

// startNodeWithRPC starts a serving node with HTTP and WebSocket on random
// loopback ports and the given module lists (nil: the transport is off), and
// returns what the service logged while starting.
func startNodeWithRPC(t *testing.T, httpModules, wsModules []string) (*gethnode.Node, *recordingHandler) {
	t.Helper()
	cfg := testConfig(1)
	cfg.Serve = true
	gc := &gethnode.Config{Name: "vflux", P2P: p2p.Config{ListenAddr: "127.0.0.1:0", NoDiscovery: true}}
	if httpModules != nil {
		gc.HTTPHost, gc.HTTPModules = "127.0.0.1", httpModules
	}
	if wsModules != nil {
		gc.WSHost, gc.WSModules = "127.0.0.1", wsModules
	}
	ConfigureP2P(&gc.P2P, cfg, false)
	stack, err := gethnode.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Close() })
	svc, err := New(stack, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingHandler{}
	svc.log = log.NewLogger(rec)
	if err := stack.Start(); err != nil {
		t.Fatal(err)
	}
	return stack, rec
}

const exposedWarning = "reachable WITHOUT AUTHENTICATION"

func TestStartWarnsWhenHTTPOrWebSocketServesTheAdminAPI(t *testing.T) {
	tests := []struct {
		name             string
		http, ws         []string
		wantHTTP, wantWS bool
	}{
		{name: "vflux listed in the HTTP modules", http: []string{"web3", "vflux"}, wantHTTP: true},
		{name: "vflux listed in the WebSocket modules", ws: []string{"vflux"}, wantWS: true},
		{name: "vflux listed in both", http: []string{"vflux"}, ws: []string{"admin", "vflux"}, wantHTTP: true, wantWS: true},
		{name: "an empty HTTP module list serves every API", http: []string{}, wantHTTP: true},
		{name: "HTTP and WebSocket without vflux", http: []string{"web3"}, ws: []string{"web3", "admin"}},
		{name: "IPC only (the default)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stack, rec := startNodeWithRPC(t, tt.http, tt.ws)
			got := rec.warnings(exposedWarning)
			var want []string
			if tt.wantHTTP {
				want = append(want, "transport=http endpoint="+stack.HTTPEndpoint())
			}
			if tt.wantWS {
				want = append(want, "transport=ws endpoint="+stack.WSEndpoint())
			}
			// The warning matches what go-ethereum really serves.
			if tt.http != nil {
				if served := servesAdminAPI(t, stack.HTTPEndpoint()); served != tt.wantHTTP {
					t.Fatalf("HTTP serves vflux_serverInfo: %v, want %v", served, tt.wantHTTP)
				}
			}
			if tt.ws != nil {
				if served := servesAdminAPI(t, stack.WSEndpoint()); served != tt.wantWS {
					t.Fatalf("WebSocket serves vflux_serverInfo: %v, want %v", served, tt.wantWS)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d warnings about the exposed admin API, want %d: %q", len(got), len(want), got)
			}
			for i, w := range want {
				if !strings.HasSuffix(got[i], w) {
					t.Errorf("warning %q does not end with %q", got[i], w)
				}
				if strings.HasSuffix(got[i], ":0") {
					t.Errorf("warning %q names port 0, not the port the endpoint listens on", got[i])
				}
			}
		})
	}
}

// servesAdminAPI reports whether the RPC endpoint answers vflux_serverInfo.
func servesAdminAPI(t *testing.T, endpoint string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	c, err := rpc.DialContext(ctx, endpoint)
	if err != nil {
		t.Fatalf("dial %s: %v", endpoint, err)
	}
	defer c.Close()
	var info map[string]interface{}
	return c.CallContext(ctx, &info, rpcNamespace+"_serverInfo") == nil
}

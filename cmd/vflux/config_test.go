package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/urfave/cli/v2"
)

// parseArgs runs the node flags through the same path as the node command and
// returns the resulting configs.
func parseArgs(t *testing.T, args ...string) (*fileConfig, *gethnode.Config, error) {
	t.Helper()
	var (
		fc  *fileConfig
		gc  *gethnode.Config
		err error
	)
	app := &cli.App{
		Name:           "vflux",
		Flags:          nodeFlags,
		ExitErrHandler: func(*cli.Context, error) {},
		Writer:         new(bytes.Buffer),
		ErrWriter:      new(bytes.Buffer),
		Action: func(ctx *cli.Context) error {
			if fc, err = makeConfig(ctx); err != nil {
				return err
			}
			gc, err = gethConfig(fc)
			return err
		},
	}
	if runErr := app.Run(append([]string{"vflux"}, args...)); runErr != nil {
		return nil, nil, runErr
	}
	return fc, gc, err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultsAreSafeForThisNetwork(t *testing.T) {
	_, gc, err := parseArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if gc.P2P.NAT != nil {
		t.Errorf("default NAT is %v, want none", gc.P2P.NAT)
	}
	if len(gc.P2P.BootstrapNodes)+len(gc.P2P.BootstrapNodesV5) != 0 {
		t.Errorf("default config has bootnodes")
	}
	if !gc.P2P.DiscoveryV5 || gc.P2P.NoDiscovery {
		t.Errorf("discv5 is not on by default: v5=%v nodiscovery=%v", gc.P2P.DiscoveryV5, gc.P2P.NoDiscovery)
	}
	if gc.IPCPath != "vflux.ipc" || gc.HTTPHost != "" || gc.WSHost != "" {
		t.Errorf("RPC defaults: ipc=%q http=%q ws=%q, want IPC only", gc.IPCPath, gc.HTTPHost, gc.WSHost)
	}
	if gc.P2P.NoDial || gc.P2P.MaxPeers != 50 {
		t.Errorf("a node that does not serve has NoDial=%v MaxPeers=%d, want false and 50", gc.P2P.NoDial, gc.P2P.MaxPeers)
	}
}

func TestServingNodeSizesPeerSlots(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		wantMaxPeers int
	}{
		{"default maxinactive equals maxclients", []string{"--vflux.serve", "--vflux.maxclients", "7"}, 14},
		{"maxinactive is added to maxclients", []string{"--vflux.serve", "--vflux.maxclients", "7", "--vflux.maxinactive", "3"}, 10},
		{"an explicit maxpeers wins", []string{"--vflux.serve", "--vflux.maxclients", "7", "--maxpeers", "5"}, 5},
		{"the default serving node has 200 slots", []string{"--vflux.serve"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, gc, err := parseArgs(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !gc.P2P.NoDial {
				t.Error("serving node dials")
			}
			if gc.P2P.MaxPeers != tt.wantMaxPeers {
				t.Errorf("MaxPeers = %d, want %d", gc.P2P.MaxPeers, tt.wantMaxPeers)
			}
		})
	}
}

func TestFlagsMapOntoConfig(t *testing.T) {
	fc, gc, err := parseArgs(t,
		"--port", "0", "--addr", "127.0.0.1", "--nodiscover", "--datadir", "/tmp/x",
		"--vflux.serve", "--vflux.mincap", "50", "--vflux.capacity", "5000", "--vflux.bias", "10s",
		"--vflux.inactive", "0s", "--vflux.price.time", "2", "--vflux.price.negative.request", "0.5",
		"--vflux.expiration.positive", "2h", "--http", "--http.api", "vflux,admin", "--nat", "extip:127.0.0.1",
		"--vflux.requestrate", "250", "--vflux.maxqueuedcost", "64", "--log.format", "json", "--vmodule", "p2p=4",
		"--vflux.resetsettings",
	)
	if err != nil {
		t.Fatal(err)
	}
	v := fc.Vflux
	if !v.Serve || v.MinCap != 50 || v.Capacity != 5000 || v.ConnectedBias != 10*time.Second || v.InactiveAllowance != 0 || !v.ResetSettings {
		t.Errorf("vflux config not mapped: %+v", v)
	}
	if v.PosPrices.Time != 2 || v.NegPrices.Request != 0.5 || v.PosExpiration != 2*time.Hour {
		t.Errorf("prices/expiration not mapped: %+v", v)
	}
	if v.RequestRate != 250 || v.MaxQueuedCost != 64 {
		t.Errorf("request limiter not mapped: rate %v, max queued cost %d", v.RequestRate, v.MaxQueuedCost)
	}
	if fc.Log.Format != "json" || fc.Log.Vmodule != "p2p=4" {
		t.Errorf("log flags not mapped: %+v", fc.Log)
	}
	if gc.P2P.ListenAddr != "127.0.0.1:0" || !gc.P2P.NoDiscovery || gc.DataDir != "/tmp/x" {
		t.Errorf("node config not mapped: listen=%q nodiscover=%v datadir=%q", gc.P2P.ListenAddr, gc.P2P.NoDiscovery, gc.DataDir)
	}
	if gc.HTTPHost != "localhost" || strings.Join(gc.HTTPModules, ",") != "vflux,admin" {
		t.Errorf("http not mapped: host=%q modules=%v", gc.HTTPHost, gc.HTTPModules)
	}
	if gc.P2P.NAT == nil {
		t.Error("--nat extip was ignored")
	}
}

func TestHTTPAndWebSocketStartOnlyWhenEnabled(t *testing.T) {
	tests := []struct {
		name             string
		args             []string
		file             string
		wantHTTP, wantWS string // "" means off
	}{
		{"--http.addr alone leaves HTTP off", []string{"--http.addr", "127.0.0.1"}, "", "", ""},
		{"--ws.addr alone leaves WebSocket off", []string{"--ws.addr", "127.0.0.1"}, "", "", ""},
		{"--http listens on localhost", []string{"--http"}, "", "localhost", ""},
		{"--ws listens on localhost", []string{"--ws"}, "", "", "localhost"},
		{"--http with --http.addr listens there", []string{"--http", "--http.addr", "127.0.0.1"}, "", "127.0.0.1", ""},
		{"--ws with --ws.addr listens there", []string{"--ws", "--ws.addr", "127.0.0.1"}, "", "", "127.0.0.1"},
		{"a host in the config file turns the server on", nil, "[Node]\nHTTPHost = \"127.0.0.2\"\nWSHost = \"127.0.0.3\"\n", "127.0.0.2", "127.0.0.3"},
		{"the addr flags override the config file's hosts", []string{"--http.addr", "127.0.0.4", "--ws.addr", "127.0.0.5"},
			"[Node]\nHTTPHost = \"127.0.0.2\"\nWSHost = \"127.0.0.3\"\n", "127.0.0.4", "127.0.0.5"},
		{"--http=false and --ws=false turn off the config file's servers", []string{"--http=false", "--ws=false"},
			"[Node]\nHTTPHost = \"127.0.0.2\"\nWSHost = \"127.0.0.3\"\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, "rpc.toml", tt.file))
			}
			_, gc, err := parseArgs(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if gc.HTTPHost != tt.wantHTTP || gc.WSHost != tt.wantWS {
				t.Errorf("HTTPHost=%q WSHost=%q, want %q and %q", gc.HTTPHost, gc.WSHost, tt.wantHTTP, tt.wantWS)
			}
		})
	}
}

func TestDumpconfigOutputLoadsBackUnchanged(t *testing.T) {
	args := []string{"--vflux.serve", "--vflux.maxclients", "3", "--bootnodes",
		"enode://a979fb575495b8d6db44f750317d0f4622bf4c2aa3365d6af7c284339968eef29b69ad0dce72a4d8db5ebb4968de0e3bec910127f134779fbcb0cb6d3331163c@127.0.0.1:30303",
		"--vflux.bias", "90s", "--datadir", "/tmp/somewhere"}
	fc, _, err := parseArgs(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dumpConfig(&buf, fc); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "dumped.toml", buf.String())
	fc2, _, err := parseArgs(t, "--config", path)
	if err != nil {
		t.Fatalf("dumped config does not load: %v\n%s", err, buf.String())
	}
	var buf2 bytes.Buffer
	if err := dumpConfig(&buf2, fc2); err != nil {
		t.Fatal(err)
	}
	if buf.String() != buf2.String() {
		t.Errorf("round trip changed the config:\n--- first\n%s\n--- second\n%s", buf.String(), buf2.String())
	}
}

func TestFlagsOverrideTheConfigFile(t *testing.T) {
	path := writeFile(t, "c.toml", "[Vflux]\nMaxClients = 5\nMinCap = 10\n[Node.P2P]\nListenAddr = \"127.0.0.1:0\"\n")
	fc, _, err := parseArgs(t, "--config", path, "--vflux.maxclients", "9")
	if err != nil {
		t.Fatal(err)
	}
	if fc.Vflux.MaxClients != 9 || fc.Vflux.MinCap != 10 || fc.Node.P2P.ListenAddr != "127.0.0.1:0" {
		t.Errorf("got maxclients=%d mincap=%d listen=%q, want 9, 10 (file), 127.0.0.1:0 (file)",
			fc.Vflux.MaxClients, fc.Vflux.MinCap, fc.Node.P2P.ListenAddr)
	}
}

func TestBadInputIsAReadableError(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		file    string
		wantErr string
	}{
		{"an unknown flag", []string{"--no-such-flag"}, "", "no-such-flag"},
		{"a malformed number", []string{"--vflux.maxclients", "many"}, "", "vflux.maxclients"},
		{"a negative price", []string{"--vflux.price.capacity", "-1"}, "", "negative"},
		{"mincap zero", []string{"--vflux.mincap", "0"}, "", "mincap"},
		{"capacity below mincap", []string{"--vflux.capacity", "10"}, "", "below mincap"},
		{"verbosity out of range", []string{"--verbosity", "9"}, "", "verbosity"},
		{"an unknown log format", []string{"--log.format", "xml"}, "", "use terminal, logfmt or json"},
		{"a negative request rate", []string{"--vflux.requestrate", "-1"}, "", "RequestRate -1 is out of range"},
		{"a bad NAT spec", []string{"--nat", "bogus"}, "", "--nat"},
		{"a bad bootnode", []string{"--bootnodes", "enode://nothex@1.2.3.4:1"}, "", "bootnode"},
		{"both node key flags", []string{"--nodekey", "/x", "--nodekeyhex", "01"}, "", "mutually exclusive"},
		{"a bad node key", []string{"--nodekeyhex", "zz"}, "", "nodekeyhex"},
		{"a missing config file", []string{"--config", "/does/not/exist.toml"}, "", "read config file"},
		{"an unknown config key", nil, "[Vflux]\nMaxClient = 5\n", "unknown setting(s): Vflux.MaxClient"},
		{"a config value of the wrong type", nil, "[Vflux]\nMaxClients = \"five\"\n", "MaxClients"},
		{"a config file that is not TOML", nil, "this is { not toml", "config file"},
		{"a bad duration in the config file", nil, "[Vflux]\nConnectedBias = \"soon\"\n", "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, "bad.toml", tt.file))
			}
			_, _, err := parseArgs(t, args...)
			if err == nil {
				t.Fatalf("no error for %v", args)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

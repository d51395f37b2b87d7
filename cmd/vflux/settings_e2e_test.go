package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	vfnode "github.com/vflux-net/vflux/node"
	"github.com/vflux-net/vflux/params"
)

// serverInfoOf asks a running node process for its server info over IPC.
func serverInfoOf(t *testing.T, n *e2eNode) *vfnode.ServerInfo {
	t.Helper()
	rpcc, err := vfnode.DialRPC(context.Background(), filepath.Join(n.datadir, params.DefaultIPCName))
	if err != nil {
		t.Fatal(err)
	}
	defer rpcc.Close()
	info, err := rpcc.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestSettingsSetOverRPCWinOverTheFlagsAfterARestartUntilReset(t *testing.T) {
	dir := e2eDir(t)
	n := startE2ENode(t, dir, "--vflux.serve", "--nodiscover", "--vflux.maxclients", "4", "--vflux.bias", "1m")
	rpcc, err := vfnode.DialRPC(context.Background(), filepath.Join(dir, params.DefaultIPCName))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rpcc.SetLimits(ctx, 6, 12000); err != nil {
		t.Fatal(err)
	}
	if err := rpcc.SetConnectedBias(ctx, 30); err != nil {
		t.Fatal(err)
	}
	if err := rpcc.SetDefaultParams(ctx, map[string]interface{}{"pricing/timeFactor": 0.37}); err != nil {
		t.Fatal(err)
	}
	rpcc.Close()
	n.interrupt(t)
	if out := n.out.String(); !strings.Contains(out, "Limits changed over RPC") || !strings.Contains(out, "maxclients=\"4 -> 6\"") {
		t.Errorf("the node did not log the change of limits:\n%s", out)
	}

	// Other flags: the settings set over RPC win, and the log says so.
	n = startE2ENode(t, dir, "--vflux.serve", "--nodiscover", "--vflux.maxclients", "8", "--vflux.bias", "2m", "--vflux.price.time", "2")
	info := serverInfoOf(t, n)
	if info.MaxCount != 6 || info.MaxCap != 12000 || info.ConnectedBias != 30 || info.DefaultParams["pricing/timeFactor"] != 0.37 {
		t.Errorf("after a restart with other flags: limits (%d, %d), bias %v s, time price %v; want (6, 12000), 30 s, 0.37",
			info.MaxCount, info.MaxCap, info.ConnectedBias, info.DefaultParams["pricing/timeFactor"])
	}
	out := n.out.String()
	for _, want := range []string{
		`maxclients\)"\s+configured=8\s+persisted=6\s`,
		`bias\)"\s+configured=2m0s\s+persisted=30s\s`,
		`price\.time\)"\s+configured=2\s+persisted=0\.37\s`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the start log does not report the override (%q):\n%s", want, out)
		}
	}
	n.interrupt(t)

	// --vflux.resetsettings: the flags apply, now and at the next start.
	n = startE2ENode(t, dir, "--vflux.serve", "--nodiscover", "--vflux.maxclients", "8", "--vflux.bias", "2m", "--vflux.resetsettings")
	if info := serverInfoOf(t, n); info.MaxCount != 8 || info.ConnectedBias != 120 {
		t.Errorf("with --vflux.resetsettings: maxclients %d, bias %v s; want the flags' 8, 120 s", info.MaxCount, info.ConnectedBias)
	}
	n.interrupt(t)
	n = startE2ENode(t, dir, "--vflux.serve", "--nodiscover", "--vflux.maxclients", "8", "--vflux.bias", "2m")
	if info := serverInfoOf(t, n); info.MaxCount != 8 || info.ConnectedBias != 120 {
		t.Errorf("the start after a reset: maxclients %d, bias %v s; want the flags' 8, 120 s", info.MaxCount, info.ConnectedBias)
	}
	if strings.Contains(n.out.String(), "overrides the configured value") {
		t.Errorf("overrides reported after a reset:\n%s", n.out.String())
	}
	n.interrupt(t)
}

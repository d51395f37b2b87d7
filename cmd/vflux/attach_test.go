package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/ethereum/go-ethereum/rpc"
	vfnode "github.com/vflux-net/vflux/node"
)

func TestAttachExecCallsTheVfluxNamespaceOfARunningNode(t *testing.T) {
	dir := e2eDir(t)
	startE2ENode(t, dir, "--vflux.serve", "--vflux.maxclients", "7", "--nodiscover")
	ipc := filepath.Join(dir, "vflux.ipc")

	// ENDPOINT as an IPC path.
	out, stderr, err := runVflux(t, "attach", "--exec", "vflux.serverInfo()", ipc)
	if err != nil {
		t.Fatalf("attach --exec: %v\n%s%s", err, out, stderr)
	}
	if !strings.Contains(out, "maxCount: 7,") || !strings.Contains(out, `serviceName: "vfx"`) {
		t.Errorf("vflux.serverInfo() output lacks maxCount 7 and the service name:\n%s", out)
	}

	// A top-up typed as people type it, then read back through the console.
	out, stderr, err = runVflux(t, "attach", "--exec", `vflux.addBalance("`+e2eSomeID+`", "2.5e12")`, ipc)
	if err != nil || !strings.Contains(out, "[0, 2500000000000]") {
		t.Fatalf("vflux.addBalance: %v\n%s%s", err, out, stderr)
	}
	out, _, err = runVflux(t, "attach", "--exec", `vflux.clientInfo("`+e2eSomeID+`")`, ipc)
	if err != nil || !strings.Contains(out, "pricing/balance: 2500000000000") {
		t.Errorf("vflux.clientInfo after the top-up: %v\n%s", err, out)
	}
	// Taking more than the balance holds needs --clamp.
	_, stderr, err = runVflux(t, "balance", "add", "--datadir", dir, e2eSomeID, "-3e12")
	if err == nil || !strings.Contains(stderr, "balance too low") || !strings.Contains(stderr, "--clamp") {
		t.Errorf("removing 3e12 of 2.5e12 tokens: %v\n%s", err, stderr)
	}
	out, stderr, err = runVflux(t, "balance", "add", "--datadir", dir, "--clamp", e2eSomeID, "-3e12")
	if err != nil || !strings.Contains(out, "balance 2500000000000 -> 0") {
		t.Errorf("balance add --clamp: %v\n%s%s", err, out, stderr)
	}
	// admin and web3 are there as in geth's console.
	out, _, err = runVflux(t, "attach", "--exec", "admin.nodeInfo.enode", ipc)
	if err != nil || !strings.Contains(out, "enode://") {
		t.Errorf("admin.nodeInfo.enode: %v\n%s", err, out)
	}
}

func TestAttachFindsTheNodeFromItsDataDirectory(t *testing.T) {
	dir := e2eDir(t)
	startE2ENode(t, dir, "--vflux.serve", "--vflux.maxclients", "9", "--nodiscover")
	for _, args := range [][]string{
		{"attach", "--exec", "vflux.serverInfo().maxCount", dir},              // ENDPOINT a data directory
		{"attach", "--datadir", dir, "--exec", "vflux.serverInfo().maxCount"}, // no ENDPOINT: --datadir's
	} {
		out, stderr, err := runVflux(t, args...)
		if err != nil || strings.TrimSpace(out) != "9" {
			t.Errorf("%v: %v, output %q (want 9)\n%s", args, err, out, stderr)
		}
	}
	// --preload loads the user's files after the vflux module.
	script := filepath.Join(dir, "mine.js")
	if err := os.WriteFile(script, []byte("function slots() { return vflux.serverInfo().maxCount * 2; }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runVflux(t, "attach", "--preload", script, "--exec", "slots()", dir)
	if err != nil || strings.TrimSpace(out) != "18" {
		t.Errorf("--preload: %v, output %q (want 18)\n%s", err, out, stderr)
	}
	_, stderr, err = runVflux(t, "attach", "--exec", "1", filepath.Join(dir, "nothing-here"))
	if err == nil || !strings.Contains(stderr, "no node at") {
		t.Errorf("attach to a missing endpoint: %v\n%s", err, stderr)
	}
}

// callRe finds the RPC methods the console module calls.
var callRe = regexp.MustCompile(`call: '(vflux_\w+)'`)

func TestTheConsoleModuleHasEveryRPCMethod(t *testing.T) {
	inJS := map[string]bool{}
	for _, m := range callRe.FindAllStringSubmatch(string(vfluxJS), -1) {
		inJS[m[1]] = true
	}
	subType := reflect.TypeOf(&rpc.Subscription{})
	api := reflect.TypeOf(&vfnode.API{})
	inAPI := map[string]bool{}
	for i := 0; i < api.NumMethod(); i++ {
		m := api.Method(i)
		if m.Type.NumOut() > 0 && m.Type.Out(0) == subType {
			continue // subscriptions (vflux_subscribe) need a callback, not a console call
		}
		// go-ethereum's RPC name: the Go name with its first letter lowered.
		r := []rune(m.Name)
		r[0] = unicode.ToLower(r[0])
		name := "vflux_" + string(r)
		inAPI[name] = true
		if !inJS[name] {
			t.Errorf("%s is not in cmd/vflux/vflux.js", name)
		}
	}
	for name := range inJS {
		if !inAPI[name] {
			t.Errorf("cmd/vflux/vflux.js calls %s, which the API does not have", name)
		}
	}
	if len(inAPI) < 9 {
		t.Fatalf("found only %d API methods: is the reflection looking at the right type?", len(inAPI))
	}
}

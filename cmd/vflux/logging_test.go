package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/log"
)

func TestVersionPrintsModuleCommitAndGoToStdout(t *testing.T) {
	out, stderr, err := runVflux(t, "version")
	if err != nil {
		t.Fatalf("vflux version: %v\n%s", err, stderr)
	}
	for _, re := range []string{`(?m)^vflux 0\.1\.0$`, `(?m)^module github\.com/vflux-net/vflux \S+$`, `(?m)^commit \S+`, `(?m)^go go1\.\d+\S* \w+/\w+$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("version output does not match %s:\n%s", re, out)
		}
	}
	// A binary stamped by Go's VCS support shows its commit and time.
	var buf bytes.Buffer
	printVersion(&buf, &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/vflux-net/vflux", Version: "v0.1.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-04T07:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		},
	})
	if want := "commit 0123456789abcdef of 2026-12-04T07:00:00Z (with uncommitted changes)\n"; !strings.Contains(buf.String(), want) {
		t.Errorf("stamped build prints\n%s\nwant the line %q", buf.String(), want)
	}
}

func TestLogFormatJSONWritesOneObjectPerLine(t *testing.T) {
	dir := e2eDir(t)
	n := &e2eNode{e2eProc: startE2EProc(t, "node", "--datadir", dir, "--port", "0", "--addr", "127.0.0.1", "--nodiscover", "--vflux.serve", "--log.format", "json"), datadir: dir}
	out, exited := n.out, n.exited
	enode := out.wait(t, regexp.MustCompile(`"enode":"(enode://[^"]+)"`), exited)
	// A client's story is logged at the default verbosity, as JSON too.
	cl := connectE2EClient(t, enode)
	out.wait(t, regexp.MustCompile(`"msg":"Client activated"`), exited)
	cl.Close()
	out.wait(t, regexp.MustCompile(`"msg":"Client disconnected".*"reason":"peer left"`), exited)
	n.interrupt(t)

	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %v\n%s", err, line)
			continue
		}
		if rec["msg"] == nil || rec["lvl"] == nil || rec["t"] == nil {
			t.Errorf("log line lacks msg, lvl or t: %s", line)
		}
		lines++
	}
	if lines < 4 {
		t.Errorf("only %d log lines:\n%s", lines, out.String())
	}
}

func TestVmoduleRaisesTheVerbosityOfMatchingFiles(t *testing.T) {
	defer applyLogConfig(new(bytes.Buffer), logConfig{Verbosity: 3}) // leave a quiet default behind
	var buf bytes.Buffer
	if err := applyLogConfig(&buf, logConfig{Verbosity: 2, Format: "logfmt"}); err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden at warn")
	if buf.Len() != 0 {
		t.Fatalf("a debug line passed verbosity 2: %s", buf.String())
	}
	if err := applyLogConfig(&buf, logConfig{Verbosity: 2, Format: "logfmt", Vmodule: "logging_test.go=4"}); err != nil {
		t.Fatal(err)
	}
	log.Debug("shown by vmodule", "k", "v")
	if got := buf.String(); !strings.Contains(got, `lvl=debug msg="shown by vmodule" k=v`) {
		t.Errorf("vmodule logging_test.go=4 did not let a debug line through in logfmt: %q", got)
	}
	for _, bad := range []logConfig{{Verbosity: 3, Format: "xml"}, {Verbosity: 3, Vmodule: "clientpool"}, {Verbosity: 7}} {
		if err := applyLogConfig(&buf, bad); err == nil {
			t.Errorf("applyLogConfig(%+v) accepted it", bad)
		}
	}
}

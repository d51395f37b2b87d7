package node

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's "Add vflux to your go-ethereum node" points to
// examples/gethnode: it must build and start (so the section cannot rot).
func TestTheGethNodeExampleBuildsAndStarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "gethnode")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.CommandContext(ctx, "go", append(args, "../examples/gethnode")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/gethnode: %v\n%s", err, out)
	}
	run := exec.CommandContext(ctx, bin, "-smoke", "-listen", "127.0.0.1:0", "-datadir", t.TempDir())
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("gethnode -smoke: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "governed by vflux") || !strings.Contains(string(out), "enr:") {
		t.Errorf("gethnode printed:\n%s", out)
	}
}

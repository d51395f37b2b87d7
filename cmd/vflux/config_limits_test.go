package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAnAbsurdDatabaseCacheInTheConfigFileExitsBeforeOpeningAnything(t *testing.T) {
	// [Vflux] DatabaseCache = 100000000 (MiB) used to reach LevelDB, whose
	// write buffer allocation killed the node with a runtime out-of-memory
	// stack trace.
	dir := e2eDir(t)
	config := filepath.Join(dir, "huge-cache.toml")
	if err := os.WriteFile(config, []byte("[Vflux]\nDatabaseCache = 100000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	datadir := filepath.Join(dir, "data")
	out, stderr, err := runVflux(t, "--config", config, "--datadir", datadir, "--vflux.serve", "--port", "0", "--nodiscover", "--ipcdisable")
	if err == nil {
		t.Fatalf("exit 0 with DatabaseCache = 100000000:\n%s", out)
	}
	if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() <= 0 {
		t.Errorf("exit: %v, want a non-zero exit code", err)
	}
	if want := "DatabaseCache 100000000 is out of range: allowed 0 to 1024"; !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
	if strings.Contains(stderr, "out of memory") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("stderr has a crash:\n%s", stderr)
	}
	if _, err := os.Stat(datadir); !os.IsNotExist(err) {
		t.Errorf("the data directory exists after the refused start (%v): something was opened", err)
	}
}

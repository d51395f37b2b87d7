package client_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vflux-net/vflux/client"
)

func TestLoadOrCreateKeyCreatesTheKeyOnceAndKeepsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", client.DefaultKeyName)
	first, created, err := client.LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first load: created %v, %v", created, err)
	}
	again, created, err := client.LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("second load: created %v, %v", created, err)
	}
	if !again.Equal(first) {
		t.Fatal("the key changed between loads")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

func TestLoadOrCreateKeyRefusesACorruptFileInsteadOfReplacingIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), client.DefaultKeyName)
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "invalid key file") {
		t.Fatalf("corrupt key file: %v, want an invalid key file error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key" {
		t.Errorf("the corrupt file was overwritten")
	}
}

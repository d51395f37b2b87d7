package main

import (
	"strings"
	"testing"

	"github.com/vflux-net/vflux/params"
)

func TestMaxPerIPComesFromTheFlagOrTheConfigFile(t *testing.T) {
	fc, _, err := parseArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Vflux.MaxPerIP != params.DefaultMaxPerIP {
		t.Errorf("default MaxPerIP %d, want %d", fc.Vflux.MaxPerIP, params.DefaultMaxPerIP)
	}
	if fc, _, err = parseArgs(t, "--vflux.maxperip", "4"); err != nil || fc.Vflux.MaxPerIP != 4 {
		t.Errorf("--vflux.maxperip 4: MaxPerIP %d, err %v", fc.Vflux.MaxPerIP, err)
	}
	path := writeFile(t, "c.toml", "[Vflux]\nMaxPerIP = 0\n")
	if fc, _, err = parseArgs(t, "--config", path); err != nil || fc.Vflux.MaxPerIP != 0 {
		t.Errorf("[Vflux] MaxPerIP = 0 (unlimited): MaxPerIP %d, err %v", fc.Vflux.MaxPerIP, err)
	}
	_, _, err = parseArgs(t, "--vflux.maxperip", "100000000")
	if err == nil || !strings.Contains(err.Error(), "MaxPerIP") {
		t.Errorf("MaxPerIP 100000000: error %v, want one naming MaxPerIP", err)
	}
}

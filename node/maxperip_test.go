package node

import (
	"testing"

	"github.com/vflux-net/vflux/params"
)

func TestThePoolBoundsClientsPerAddressAsConfigured(t *testing.T) {
	for _, perIP := range []uint64{params.DefaultMaxPerIP, 0, 3} {
		cfg := testConfig(3)
		cfg.MaxPerIP = perIP
		n := startNode(t, cfg, "", true)
		if got := n.svc.Pool().MaxPerFreeID(); got != int(perIP) {
			t.Errorf("MaxPerIP %d: the pool's bound is %d", perIP, got)
		}
	}
}

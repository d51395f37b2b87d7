package node

import (
	"errors"
	"strings"
	"testing"

	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
)

func TestGovernListIsValidated(t *testing.T) {
	for _, tc := range []struct {
		govern []string
		want   string
	}{
		{[]string{"eth", ""}, "empty protocol name"},
		{[]string{"vfx"}, "vflux's own protocol"},
		{[]string{"eth", "snap", "eth"}, `"eth" is listed twice`},
		{[]string{"eth"}, `"snap", which is not governed`},
		{[]string{"eth", "snap"}, "code 15 is given twice"},
	} {
		cfg := DefaultConfig()
		cfg.Govern = tc.govern
		cfg.GovernCosts = []MessageCost{{Protocol: "eth", Code: 15, Cost: 1}, {Protocol: "snap", Code: 15, Cost: 1}, {Protocol: "eth", Code: 15, Cost: 2}}
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Govern %q: error %v, want one saying %q", tc.govern, err, tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.Govern = []string{"eth", "snap"}
	cfg.GovernCosts = []MessageCost{{Protocol: "eth", Code: 15, Cost: 1}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Govern eth,snap: %v", err)
	}
}

func TestGoverningAProtocolNotOnTheStackIsAnErrorNamingWhatIsThere(t *testing.T) {
	stack, err := gethnode.New(&gethnode.Config{P2P: p2p.Config{ListenAddr: "127.0.0.1:0", NoDiscovery: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close()
	stack.RegisterProtocols([]p2p.Protocol{{Name: "mine", Version: 1, Length: 1, Run: func(*p2p.Peer, p2p.MsgReadWriter) error { return nil }}})
	cfg := DefaultConfig()
	cfg.Serve = true
	cfg.Govern = []string{"mine", "eth"}
	_, err = New(stack, cfg)
	if err == nil || !strings.Contains(err.Error(), `"eth" is not registered`) || !strings.Contains(err.Error(), "registered: mine") {
		t.Fatalf("New governing a missing protocol: %v", err)
	}
}

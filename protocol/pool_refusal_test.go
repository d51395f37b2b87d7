package protocol

import (
	"testing"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/p2ptest"
)

// limitPool refuses every client as clientpool.ClientPool refuses one beyond
// its per-address bound (SetMaxPerFreeID): the peer is told to Disconnect and
// Register returns nil.
type limitPool struct{ *fakePool }

func (l limitPool) Register(p clientpool.Peer) clientpool.ConnectedBalance {
	p.Disconnect()
	return nil
}

func TestAClientRefusedByAPoolLimitIsDisconnectedWithTooManyPeers(t *testing.T) {
	h := newTestHandler(limitPool{newFakePool(testMinCap, 10)})
	// The pool refuses the peer as soon as it connects, before the handshake.
	m := p2ptest.NewMsgTester(t, h.Protocol(), enode.ID{9})
	m.ExpectDisconnect(p2p.DiscTooManyPeers)
}

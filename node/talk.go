package node

import (
	"net"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/vflux"
)

// talkHandler serves discv5 TALKREQ "vfx" through the request server, which
// bounds the wait and the reply size (SPEC 4.2).
func talkHandler(server *vflux.Server) func(*enode.Node, *net.UDPAddr, []byte) []byte {
	return func(n *enode.Node, addr *net.UDPAddr, req []byte) []byte {
		if n == nil || addr == nil {
			return nil
		}
		resp := server.ServeTalk(n.ID(), addr.IP, req)
		if resp == nil {
			talkDroppedMeter.Mark(1)
		} else {
			talkServedMeter.Mark(1)
		}
		return resp
	}
}

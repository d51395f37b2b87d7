package vflux_test

import (
	"fmt"
	"net"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/vflux"
)

// capService answers "cq" with 1000 per requested amount and "bal" with fixed balances.
type capService struct{}

func (capService) Handle(id enode.ID, freeID, name string, data []byte) []byte {
	switch name {
	case vflux.CapacityQueryName:
		var req vflux.CapacityQueryReq
		if rlp.DecodeBytes(data, &req) != nil || req.Validate() != nil {
			return nil
		}
		reply := make(vflux.CapacityQueryReply, len(req.AddTokens))
		for i := range reply {
			reply[i] = 1000
		}
		enc, _ := rlp.EncodeToBytes(reply)
		return enc
	case vflux.BalanceQueryName:
		if !vflux.ValidNoParams(data) {
			return nil
		}
		enc, _ := rlp.EncodeToBytes(&vflux.BalanceReply{Pos: 5, Neg: 7})
		return enc
	}
	return nil
}

// A client builds a batch with Requests.Add, a transport hands the encoded batch
// to the server, and the client decodes each reply with Replies.Get.
func ExampleServer_ServeEncoded() {
	server := vflux.NewServer(vflux.ServerConfig{Rate: 1000})
	defer server.Stop()
	if err := server.Register(capService{}, "vfx", "client pool"); err != nil {
		panic(err)
	}

	var reqs vflux.Requests
	var amount vflux.IntOrInf
	amount.SetInt64(1000000)
	cq, _ := reqs.Add("vfx", vflux.CapacityQueryName, &vflux.CapacityQueryReq{Bias: 180, AddTokens: []vflux.IntOrInf{{}, amount}})
	bal, _ := reqs.Add("vfx", vflux.BalanceQueryName, struct{}{})
	other, _ := reqs.Add("nosuch", vflux.ServerInfoName, struct{}{})
	batch, _ := rlp.EncodeToBytes(reqs)

	answer := server.ServeEncoded(enode.ID{1}, net.ParseIP("192.0.2.7"), batch)

	var replies vflux.Replies
	if err := rlp.DecodeBytes(answer, &replies); err != nil {
		panic(err)
	}
	var caps vflux.CapacityQueryReply
	var balance vflux.BalanceReply
	var info vflux.ServerInfoReply
	fmt.Println(replies.Get(cq, &caps), caps)
	fmt.Println(replies.Get(bal, &balance), balance)
	fmt.Println(replies.Get(other, &info))
	// Output:
	// <nil> [1000 1000]
	// <nil> {5 7}
	// vflux: no reply for request
}

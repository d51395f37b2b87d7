package client

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// ParseNodeURL parses an ENR ("enr:-...") or enode URL ("enode://...").
// Its errors say what was expected instead of the decoder's internals
// (an ENR cut short reads "rlp: value size exceeds available input length").
func ParseNodeURL(s string) (*enode.Node, error) {
	s = strings.TrimSpace(s)
	n, err := enode.Parse(enode.ValidSchemes, s)
	if err == nil {
		return n, nil
	}
	var why string
	switch {
	case strings.HasPrefix(s, "enr:"):
		why = fmt.Sprintf("the record does not decode (%v); copy the whole enr:-... text, as the node logs it at start (\"vflux node started enr=...\")", err)
	case strings.HasPrefix(s, "enode://"):
		why = fmt.Sprintf("%v; the form is enode://<128 hex digits>@<ip>:<tcp port>[?discport=<udp port>]", err)
	default:
		why = "it starts with neither enr: nor enode://"
	}
	shown := s
	if len(shown) > 80 {
		shown = shown[:77] + "..."
	}
	return nil, fmt.Errorf("not a valid ENR or enode URL: %q: %s", shown, why)
}

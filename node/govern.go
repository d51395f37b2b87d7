package node

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/p2p"
)

// governQueueBytes bounds the inbound messages held for one client's governed
// protocols while it is inactive or its buffer is empty. Past it the client's
// connection is not read (backpressure); a single larger message is held
// alone, so the bound is this or one message, whichever is larger.
const governQueueBytes = 256 * 1024

// governProtocols wraps the Run of every protocol on the stack named in names
// (all versions of each), so its inbound peers become pool clients whose
// traffic is admitted and metered (SPEC 11). It must run before the stack
// starts, after checkGoverned.
func (s *Service) governProtocols(protos []p2p.Protocol, names []string) {
	for i := range protos {
		p := &protos[i]
		for _, name := range names {
			if p.Name == name {
				p.Run = s.governed(p.Name, p.Version, p.Run)
			}
		}
	}
}

// checkGoverned returns an error naming the first of names that no protocol
// in protos has, and what is there.
func checkGoverned(protos []p2p.Protocol, names []string) error {
	for _, name := range names {
		found := false
		for _, p := range protos {
			found = found || p.Name == name
		}
		if !found {
			return fmt.Errorf("vflux govern: protocol %q is not registered on the node (registered: %s); register it (e.g. with eth.New) before vflux",
				name, protocolNames(protos))
		}
	}
	return nil
}

// protocolNames lists the distinct protocol names of protos, sorted.
func protocolNames(protos []p2p.Protocol) string {
	seen := make(map[string]bool)
	var out []string
	for _, p := range protos {
		if !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// governed returns run wrapped for governing. A peer the node dialed itself
// and a trusted peer are not clients: their protocol runs as if vflux were not
// there (the node's own sync is never throttled by its own pool).
func (s *Service) governed(name string, version uint, run func(*p2p.Peer, p2p.MsgReadWriter) error) func(*p2p.Peer, p2p.MsgReadWriter) error {
	label := fmt.Sprintf("%s/%d", name, version)
	return func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
		if !p.Inbound() || p.Trusted() {
			return run(p, rw)
		}
		c := s.clients.attach(p.Node(), p, freeClientIDOf(p), nil, label)
		if c == nil {
			if s.clients.isStopped() {
				return p2p.DiscQuitting
			}
			return p2p.DiscAlreadyConnected
		}
		defer s.clients.detach(c, false, label)
		st := c.flow.newStream(name, rw)
		// The pump is not waited for: it ends when the connection closes,
		// which go-ethereum does only after a protocol's Run returned.
		go st.pump()
		defer st.end()
		return run(p, st)
	}
}

// isStopped reports whether the registry refuses clients because the service stopped.
func (r *clientRegistry) isStopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

package p2ptest

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// ServerConfig is what a test chooses about one in-process server; the rest is
// fixed: 127.0.0.1, random ports, a fresh key, no NAT, no bootnodes.
type ServerConfig struct {
	Protocols []p2p.Protocol
	// MaxPeers defaults to 50.
	MaxPeers int
	// NoDial makes every slot inbound (a serving node does not dial).
	NoDial bool
	// NoDiscovery turns discv5 off (no UDP socket), for light-weight clients in
	// tests that start hundreds of servers.
	NoDiscovery bool
	// NoListen leaves the server without a TCP listener: it can only dial.
	NoListen bool
	// Name is the client name in the devp2p hello; defaults to "p2ptest".
	Name string
	// DialFrom is the local IP the server's outbound connections come from,
	// e.g. "127.0.0.2" so that on loopback it looks like another host to the
	// node it dials; empty means the system's choice.
	DialFrom string
}

// NewKey returns a fresh secp256k1 node key.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatalf("p2ptest: generate key: %v", err)
	}
	return key
}

// StartServer starts a p2p.Server on 127.0.0.1 and stops it at cleanup.
func StartServer(t testing.TB, cfg ServerConfig) *p2p.Server {
	t.Helper()
	key := NewKey(t)
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = 50
	}
	if cfg.Name == "" {
		cfg.Name = "p2ptest"
	}
	srv := &p2p.Server{Config: p2p.Config{
		PrivateKey:  key,
		MaxPeers:    cfg.MaxPeers,
		NoDial:      cfg.NoDial,
		NoDiscovery: cfg.NoDiscovery,
		DiscoveryV5: !cfg.NoDiscovery,
		Name:        cfg.Name,
		Protocols:   cfg.Protocols,
		ListenAddr:  "127.0.0.1:0",
	}}
	if cfg.NoListen {
		srv.ListenAddr = ""
	}
	if cfg.DialFrom != "" {
		ip := net.ParseIP(cfg.DialFrom)
		if ip == nil {
			t.Fatalf("p2ptest: DialFrom %q is not an IP address", cfg.DialFrom)
		}
		srv.Dialer = localDialer{&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}}
	}
	if !cfg.NoDiscovery {
		// The UDP port is separate from the TCP one when both are random.
		srv.DiscAddr = "127.0.0.1:0"
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("p2ptest: start server: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// localDialer dials nodes over TCP from a chosen local address.
type localDialer struct{ d *net.Dialer }

// Dial implements p2p.NodeDialer.
func (l localDialer) Dial(ctx context.Context, n *enode.Node) (net.Conn, error) {
	addr, ok := n.TCPEndpoint()
	if !ok {
		return nil, fmt.Errorf("p2ptest: node %x has no TCP endpoint", n.ID().Bytes()[:8])
	}
	return l.d.DialContext(ctx, "tcp", addr.String())
}

// StartServers starts n servers; cfg(i) configures the i-th.
func StartServers(t testing.TB, n int, cfg func(i int) ServerConfig) []*p2p.Server {
	t.Helper()
	srvs := make([]*p2p.Server, n)
	for i := range srvs {
		srvs[i] = StartServer(t, cfg(i))
	}
	return srvs
}

// Watcher records the peer events of one server from the moment Watch is
// called, so a test can wait for them with a deadline. It always drains the
// server's event feed, so it never slows the server down.
type Watcher struct {
	t      testing.TB
	srv    *p2p.Server
	mu     sync.Mutex
	cond   *sync.Cond
	events []*p2p.PeerEvent
	used   []bool
	closed bool
}

// Watch starts recording srv's peer events until cleanup.
func Watch(t testing.TB, srv *p2p.Server) *Watcher {
	w := &Watcher{t: t, srv: srv}
	w.cond = sync.NewCond(&w.mu)
	ch := make(chan *p2p.PeerEvent, 64)
	sub := srv.SubscribeEvents(ch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev := <-ch:
				w.mu.Lock()
				w.events = append(w.events, ev)
				w.used = append(w.used, false)
				w.cond.Broadcast()
				w.mu.Unlock()
			case <-sub.Err():
				w.mu.Lock()
				w.closed = true
				w.cond.Broadcast()
				w.mu.Unlock()
				return
			}
		}
	}()
	t.Cleanup(func() {
		sub.Unsubscribe()
		<-done
	})
	return w
}

// Wait returns the first not yet consumed event of the given type for peer id
// and consumes it; it fails the test if none arrives within timeout.
func (w *Watcher) Wait(typ p2p.PeerEventType, id enode.ID, timeout time.Duration) *p2p.PeerEvent {
	w.t.Helper()
	ev, err := w.wait(typ, id, timeout)
	if err != nil {
		w.t.Fatal(err)
	}
	return ev
}

// WaitAdd waits for peer id to be added.
func (w *Watcher) WaitAdd(id enode.ID, timeout time.Duration) {
	w.t.Helper()
	w.Wait(p2p.PeerEventTypeAdd, id, timeout)
}

// WaitDrop waits for peer id to be dropped and returns the drop reason, parsed
// back from the event's error text (the event carries only the text). The
// second result is false when the text is not a disconnect reason.
func (w *Watcher) WaitDrop(id enode.ID, timeout time.Duration) (p2p.DiscReason, string) {
	w.t.Helper()
	ev := w.Wait(p2p.PeerEventTypeDrop, id, timeout)
	r, _ := ParseDiscReason(ev.Error)
	return r, ev.Error
}

// ExpectDrop waits for peer id to be dropped with the given reason.
func (w *Watcher) ExpectDrop(id enode.ID, reason p2p.DiscReason, timeout time.Duration) {
	w.t.Helper()
	ev := w.Wait(p2p.PeerEventTypeDrop, id, timeout)
	if ev.Error != reason.Error() {
		w.t.Fatalf("p2ptest: peer %x dropped with %q, want %q", id[:8], ev.Error, reason.Error())
	}
}

// Events returns a copy of every event recorded so far.
func (w *Watcher) Events() []p2p.PeerEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := make([]p2p.PeerEvent, len(w.events))
	for i, ev := range w.events {
		evs[i] = *ev
	}
	return evs
}

// WaitAllDropped waits until every peer added since Watch has been dropped
// again, failing the test after timeout.
func (w *Watcher) WaitAllDropped(timeout time.Duration) {
	w.t.Helper()
	var live map[enode.ID]int
	err := w.waitFor(timeout, func() bool {
		live = make(map[enode.ID]int)
		for _, ev := range w.events {
			switch ev.Type {
			case p2p.PeerEventTypeAdd:
				live[ev.Peer]++
			case p2p.PeerEventTypeDrop:
				if live[ev.Peer]--; live[ev.Peer] == 0 {
					delete(live, ev.Peer)
				}
			}
		}
		return len(live) == 0
	})
	if err != nil {
		w.t.Fatalf("p2ptest: %d peers still connected after %v (%v)", len(live), timeout, err)
	}
}

func (w *Watcher) wait(typ p2p.PeerEventType, id enode.ID, timeout time.Duration) (*p2p.PeerEvent, error) {
	var found *p2p.PeerEvent
	err := w.waitFor(timeout, func() bool {
		for i, ev := range w.events {
			if !w.used[i] && ev.Type == typ && ev.Peer == id {
				w.used[i] = true
				found = ev
				return true
			}
		}
		return false
	})
	switch err {
	case nil:
		return found, nil
	case errWatchClosed:
		return nil, fmt.Errorf("p2ptest: event subscription closed while waiting for %s of %x", typ, id[:8])
	default:
		w.mu.Lock()
		seen := w.describe()
		w.mu.Unlock()
		return nil, fmt.Errorf("p2ptest: no %s event for peer %x within %v; events seen: %s", typ, id[:8], timeout, seen)
	}
}

// Why waitFor gave up.
var (
	errWatchClosed  = errors.New("event subscription closed")
	errWatchTimeout = errors.New("timed out")
)

// waitFor calls cond with w.mu held, first at once and then after every new
// event, until it returns true. It gives up with errWatchClosed when the event
// subscription ends first and with errWatchTimeout once timeout has passed.
func (w *Watcher) waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	// The timer wakes the Wait below once the deadline has passed.
	timer := time.AfterFunc(timeout, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for !cond() {
		if w.closed {
			return errWatchClosed
		}
		if !time.Now().Before(deadline) {
			return errWatchTimeout
		}
		w.cond.Wait()
	}
	return nil
}

func (w *Watcher) describe() string {
	var b strings.Builder
	for _, ev := range w.events {
		fmt.Fprintf(&b, "[%s %x %s] ", ev.Type, ev.Peer[:4], ev.Error)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Connect makes a dial b (as a static peer) and waits until both have added
// the other; it removes the static entry at cleanup so a dropped connection is
// not redialled.
func Connect(t testing.TB, a, b *p2p.Server, timeout time.Duration) {
	t.Helper()
	wa, wb := Watch(t, a), Watch(t, b)
	a.AddPeer(b.Self())
	t.Cleanup(func() { a.RemovePeer(b.Self()) })
	wa.WaitAdd(b.Self().ID(), timeout)
	wb.WaitAdd(a.Self().ID(), timeout)
}

// TalkRequest sends a discv5 TALKREQ from one server to another and returns the
// answer. Both need discovery on.
func TalkRequest(t testing.TB, from, to *p2p.Server, protocol string, req []byte) ([]byte, error) {
	t.Helper()
	d := from.DiscoveryV5()
	if d == nil || to.DiscoveryV5() == nil {
		t.Fatal("p2ptest: TalkRequest needs discv5 on both servers")
	}
	return d.TalkRequest(to.DiscoveryV5().Self(), protocol, req)
}

// ParseDiscReason maps the text of a p2p.DiscReason (as carried by peer drop
// events) back to the reason.
func ParseDiscReason(s string) (p2p.DiscReason, bool) {
	for r := p2p.DiscReason(0); r < p2p.DiscReason(0x20); r++ {
		if r.Error() == s && !strings.HasPrefix(s, "unknown disconnect reason") {
			return r, true
		}
	}
	if s == p2p.DiscReason(p2p.DiscInvalid).Error() {
		return p2p.DiscInvalid, true
	}
	return 0, false
}

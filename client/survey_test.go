package client_test

import (
	"context"
	"errors"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/p2ptest"
)

func TestSurveyFindsEveryServerThroughTheBootnodeAndRanksThemByTheirAnswers(t *testing.T) {
	n := startNetwork(t)
	key := p2ptest.NewKey(t)
	c := newClient(t, client.Config{
		PrivateKey: key,
		Bootnodes:  []*enode.Node{n.boot.Self()},
		Amounts:    bigs(0, 1e12),
	})
	n.cheap.addBalance(t, c.Self().ID(), 5e9)

	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	var last client.Progress
	start := time.Now()
	offers, err := c.Survey(ctx, 3, func(p client.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	// With a limit the survey ends at the last answer, not at the deadline.
	if took := time.Since(start); took > time.Second {
		t.Errorf("survey of three servers took %v", took)
	}
	names := map[enode.ID]string{n.cheap.node().ID(): "cheap", n.standard.node().ID(): "standard", n.full.node().ID(): "full"}
	order := func() (out []string) {
		for _, o := range offers {
			out = append(out, names[o.Node.ID()])
		}
		return out
	}
	// For 0 tokens (the default budget): cheap, where the client has a
	// balance, offers it more than standard's mincap; full admits nobody for
	// free.
	if got := order(); !slices.Equal(got, []string{"cheap", "standard", "full"}) {
		t.Fatalf("ranked for a free client: %v, want cheap, standard, full", got)
	}
	if last.Found != 3 || last.Answered != 3 {
		t.Errorf("last progress %+v, want 3 found and answered", last)
	}
	// For 1e12 tokens, standard's larger total capacity wins.
	client.Rank(offers, client.ByCapacityFor(big.NewInt(1e12)))
	if got := order(); !slices.Equal(got, []string{"standard", "cheap", "full"}) {
		t.Fatalf("ranked for 1e12 tokens: %v, want standard, cheap, full", got)
	}
	// The query is made with the client's own key, so the balance is its own.
	if b := offers[1].Balance; b == nil || b.Pos != 5e9 {
		t.Errorf("balance on cheap = %+v, want 5e9 tokens", b)
	}
}

func TestSurveySkipsAServerThatStopsAnswering(t *testing.T) {
	good := startServer(t, serverConfig(2), nil)
	silent := silentNode(t)
	const queryTimeout = time.Second
	c := newClient(t, client.Config{
		Servers:      []*enode.Node{silent, good.node()},
		QueryTimeout: queryTimeout,
	})
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	start := time.Now()
	offers, err := c.Survey(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > queryTimeout+2*time.Second {
		t.Errorf("survey took %v with a query timeout of %v", took, queryTimeout)
	}
	if len(offers) != 1 || offers[0].Node.ID() != good.node().ID() {
		t.Fatalf("offers %v, want only the answering server", offers)
	}
	if _, err := c.Query(ctx, silent); !errors.Is(err, client.ErrNoAnswer) {
		t.Errorf("query of the silent server: %v, want ErrNoAnswer", err)
	}
}

// silentNode is the record of a node whose UDP port reads packets and never
// answers, like a server that hangs.
func silentNode(t *testing.T) *enode.Node {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	db, err := enode.OpenDB("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	ln := enode.NewLocalNode(db, p2ptest.NewKey(t))
	ln.SetStaticIP(net.IPv4(127, 0, 0, 1))
	ln.Set(enr.UDP(conn.LocalAddr().(*net.UDPAddr).Port))
	return ln.Node()
}

func TestSurveyEndsAtItsDeadlineWhenTheBootnodeIsSilent(t *testing.T) {
	c := newClient(t, client.Config{Bootnodes: []*enode.Node{silentNode(t)}})
	const deadline = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	offers, err := c.Survey(ctx, 0, nil)
	if !errors.Is(err, client.ErrNoServers) {
		t.Fatalf("survey: %v, %v; want ErrNoServers", offers, err)
	}
	if took := time.Since(start); took > deadline+500*time.Millisecond {
		t.Errorf("survey took %v with a deadline of %v", took, deadline)
	}
}

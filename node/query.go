package node

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/discover"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// Errors of the query client; callers (the CLI) branch on them for exit
// messages.
var (
	// ErrNoAnswer: the server did not answer the TALKREQ (it is down, not
	// serving vflux, has discovery off, or dropped the request under load).
	ErrNoAnswer = errors.New("server did not answer")
	// ErrBadNode: the server's ENR or enode URL cannot be used.
	ErrBadNode = errors.New("bad server address")
)

// ParseServerNode parses an ENR ("enr:...") or an enode URL and checks that it
// has a UDP endpoint to send TALKREQs to.
func ParseServerNode(s string) (*enode.Node, error) {
	n, err := ParseNodeURL(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadNode, err)
	}
	if _, ok := n.UDPEndpoint(); !ok {
		return nil, fmt.Errorf("%w: %s has no IP and UDP port: it answers no capacity queries (discovery off?)", ErrBadNode, n.ID().TerminalString())
	}
	return n, nil
}

// Querier is a throwaway discv5 endpoint for asking vflux servers questions
// over TALKREQ before connecting. It has a fresh key and no node database.
type Querier struct {
	disc *discover.UDPv5
	db   *enode.DB
}

// NewQuerier opens a discv5 socket on a random port of listenIP (use the
// loopback address to query local servers, the unspecified address otherwise).
func NewQuerier(listenIP net.IP) (*Querier, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate query key: %w", err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: listenIP})
	if err != nil {
		return nil, fmt.Errorf("open query socket: %w", err)
	}
	db, err := enode.OpenDB("")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open node db: %w", err)
	}
	ln := enode.NewLocalNode(db, key)
	laddr := conn.LocalAddr().(*net.UDPAddr)
	if !laddr.IP.IsUnspecified() {
		ln.SetStaticIP(laddr.IP)
	} else {
		ln.SetFallbackIP(net.IPv4(127, 0, 0, 1))
	}
	ln.SetFallbackUDP(laddr.Port)
	disc, err := discover.ListenV5(conn, ln, discover.Config{PrivateKey: key})
	if err != nil {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("start discv5: %w", err)
	}
	return &Querier{disc: disc, db: db}, nil
}

// QuerierFor opens a Querier suited to reach server: on loopback for a local
// server, on all interfaces otherwise.
func QuerierFor(server *enode.Node) (*Querier, error) {
	if ip := server.IP(); ip != nil && ip.IsLoopback() {
		return NewQuerier(ip)
	}
	return NewQuerier(net.IPv4zero)
}

// Self is the querier's own node record.
func (q *Querier) Self() *enode.Node { return q.disc.Self() }

// Close shuts the socket down.
func (q *Querier) Close() {
	q.disc.Close()
	q.db.Close()
}

// Talk sends one TALKREQ and returns the raw answer. It gives up when ctx
// ends; a lost packet is retried while ctx allows. An empty answer is
// returned as is (nil error): that is how discv5 says "no handler".
func (q *Querier) Talk(ctx context.Context, server *enode.Node, protocol string, payload []byte) ([]byte, error) {
	type result struct {
		resp []byte
		err  error
	}
	var lastErr error
	for {
		ch := make(chan result, 1)
		go func() {
			resp, err := q.disc.TalkRequest(server, protocol, payload)
			ch <- result{resp, err}
		}()
		select {
		case r := <-ch:
			if r.err == nil {
				return r.resp, nil
			}
			lastErr = r.err
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return nil, fmt.Errorf("%w: TALKREQ to %s: %v", ErrNoAnswer, udpAddr(server), lastErr)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: TALKREQ to %s: %v", ErrNoAnswer, udpAddr(server), lastErr)
		}
	}
}

func udpAddr(n *enode.Node) string {
	if ap, ok := n.UDPEndpoint(); ok {
		return ap.String()
	}
	return n.ID().TerminalString()
}

// QueryResult is a server's answer to a capacity query.
type QueryResult struct {
	// Amounts are the token amounts asked about, Capacities the capacity the
	// server would grant after adding each (0 = not admitted).
	Amounts    []*big.Int
	Capacities []uint64
	// Info is the server's pricing and load ("info"); nil if it did not say.
	Info *vflux.ServerInfoReply
	// Balance is the querier's own balance on the server ("bal"); nil if it
	// did not say. A fresh querier always has zero balances.
	Balance *vflux.BalanceReply
}

// Query asks server, under service name service, what capacity it would get
// for each amount of tokens (at most params.MaxCapQueryAmounts) with the given
// bias, and for its server info, in one TALKREQ batch.
func (q *Querier) Query(ctx context.Context, server *enode.Node, service string, amounts []*big.Int, bias time.Duration) (*QueryResult, error) {
	if len(amounts) == 0 || len(amounts) > params.MaxCapQueryAmounts {
		return nil, fmt.Errorf("a capacity query takes 1 to %d amounts, got %d", params.MaxCapQueryAmounts, len(amounts))
	}
	cq := vflux.CapacityQueryReq{Bias: uint64(bias / time.Second), AddTokens: make([]vflux.IntOrInf, len(amounts))}
	for i, a := range amounts {
		cq.AddTokens[i].SetBigInt(a)
	}
	var reqs vflux.Requests
	cqIdx, err := reqs.Add(service, vflux.CapacityQueryName, &cq)
	if err != nil {
		return nil, err
	}
	infoIdx, err := reqs.Add(service, vflux.ServerInfoName, []interface{}{})
	if err != nil {
		return nil, err
	}
	balIdx, err := reqs.Add(service, vflux.BalanceQueryName, []interface{}{})
	if err != nil {
		return nil, err
	}
	enc, err := encodeRequests(reqs)
	if err != nil {
		return nil, err
	}
	resp, err := q.Talk(ctx, server, params.TalkProtocolID, enc)
	if err != nil {
		return nil, err
	}
	if len(resp) == 0 {
		return nil, fmt.Errorf("%w: %s sent an empty TALKREQ answer (not a vflux server, or it dropped the request)", ErrNoAnswer, udpAddr(server))
	}
	replies, err := decodeReplies(resp)
	if err != nil {
		return nil, fmt.Errorf("bad answer from %s: %w", udpAddr(server), err)
	}
	res := &QueryResult{Amounts: amounts}
	var caps vflux.CapacityQueryReply
	if err := replies.Get(cqIdx, &caps); err != nil {
		return nil, fmt.Errorf("%w: %s has no %q service answering capacity queries (%v)", ErrNoAnswer, udpAddr(server), service, err)
	}
	if len(caps) != len(amounts) {
		return nil, fmt.Errorf("bad answer from %s: %d capacities for %d amounts", udpAddr(server), len(caps), len(amounts))
	}
	res.Capacities = caps
	var info vflux.ServerInfoReply
	if replies.Get(infoIdx, &info) == nil {
		res.Info = &info
	}
	var bal vflux.BalanceReply
	if replies.Get(balIdx, &bal) == nil {
		res.Balance = &bal
	}
	return res, nil
}

func encodeRequests(reqs vflux.Requests) ([]byte, error) {
	enc, err := rlp.EncodeToBytes(reqs)
	if err != nil {
		return nil, fmt.Errorf("encode vflux batch: %w", err)
	}
	return enc, nil
}

func decodeReplies(b []byte) (vflux.Replies, error) {
	var replies vflux.Replies
	if err := rlp.DecodeBytes(b, &replies); err != nil {
		return nil, fmt.Errorf("decode vflux replies: %w", err)
	}
	return replies, nil
}

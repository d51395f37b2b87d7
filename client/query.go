package client

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// Offer is one server's answer to a capacity query: what it would grant for
// each amount of tokens added to the client's balance, and its terms.
type Offer struct {
	Node *enode.Node
	// Amounts are the token amounts asked about, Capacities what the server
	// would grant after adding each (0 = not admitted).
	Amounts    []*big.Int
	Capacities []uint64
	// Info is the server's pricing and load; nil if it did not say.
	Info *vflux.ServerInfoReply
	// Balance is the client's own balance there; nil if the server does not
	// disclose it.
	Balance *vflux.BalanceReply
	// RTT is how long the answer took.
	RTT time.Duration
}

// CapacityFor returns the capacity offered for amount and whether amount was
// asked about.
func (o *Offer) CapacityFor(amount *big.Int) (uint64, bool) {
	for i, a := range o.Amounts {
		if a.Cmp(amount) == 0 {
			return o.Capacities[i], true
		}
	}
	return 0, false
}

// Query asks server, over discv5 TALKREQ, for a capacity quote for each of
// the configured amounts (Config.Amounts and Budget), its server info and the
// client's balance there, in one batch. It gives up when ctx ends or after
// Config.QueryTimeout, with an error wrapping ErrNoAnswer; an empty answer
// (no vflux there, or a request dropped under load) wraps ErrEmptyAnswer.
func (c *Client) Query(ctx context.Context, server *enode.Node) (*Offer, error) {
	return c.QueryAmounts(ctx, server, c.cfg.amounts())
}

// QueryAmounts is Query for the given amounts (1 to
// params.MaxCapQueryAmounts).
func (c *Client) QueryAmounts(ctx context.Context, server *enode.Node, amounts []*big.Int) (*Offer, error) {
	if len(amounts) == 0 || len(amounts) > params.MaxCapQueryAmounts {
		return nil, fmt.Errorf("a capacity query takes 1 to %d amounts, got %d", params.MaxCapQueryAmounts, len(amounts))
	}
	if _, ok := server.UDPEndpoint(); !ok {
		return nil, fmt.Errorf("%w: %s has no UDP endpoint (discovery off?)", ErrNoAnswer, server.ID().TerminalString())
	}
	cq := vflux.CapacityQueryReq{Bias: uint64(c.cfg.Bias / time.Second), AddTokens: make([]vflux.IntOrInf, len(amounts))}
	for i, a := range amounts {
		cq.AddTokens[i].SetBigInt(a)
	}
	var reqs vflux.Requests
	cqIdx, err := reqs.Add(c.cfg.Service, vflux.CapacityQueryName, &cq)
	if err != nil {
		return nil, err
	}
	infoIdx, err := reqs.Add(c.cfg.Service, vflux.ServerInfoName, []interface{}{})
	if err != nil {
		return nil, err
	}
	balIdx, err := reqs.Add(c.cfg.Service, vflux.BalanceQueryName, []interface{}{})
	if err != nil {
		return nil, err
	}
	enc, err := rlp.EncodeToBytes(reqs)
	if err != nil {
		return nil, fmt.Errorf("encode vflux batch: %w", err)
	}
	start := time.Now()
	resp, err := c.Talk(ctx, server, params.TalkProtocolID, enc)
	if err != nil {
		return nil, err
	}
	if len(resp) == 0 {
		return nil, fmt.Errorf("%w from %s (not a vflux server, or it dropped the request)", ErrEmptyAnswer, server.ID().TerminalString())
	}
	var replies vflux.Replies
	if err := rlp.DecodeBytes(resp, &replies); err != nil {
		return nil, fmt.Errorf("bad answer from %s: %w", server.ID().TerminalString(), err)
	}
	offer := &Offer{Node: server, Amounts: amounts, RTT: time.Since(start)}
	var caps vflux.CapacityQueryReply
	if err := replies.Get(cqIdx, &caps); err != nil {
		return nil, fmt.Errorf("%w: %s has no %q service answering capacity queries (%v)", ErrNoAnswer, server.ID().TerminalString(), c.cfg.Service, err)
	}
	if len(caps) != len(amounts) {
		return nil, fmt.Errorf("bad answer from %s: %d capacities for %d amounts", server.ID().TerminalString(), len(caps), len(amounts))
	}
	offer.Capacities = caps
	var info vflux.ServerInfoReply
	if replies.Get(infoIdx, &info) == nil {
		offer.Info = &info
	}
	var bal vflux.BalanceReply
	if replies.Get(balIdx, &bal) == nil {
		offer.Balance = &bal
	}
	return offer, nil
}

// Talk sends one TALKREQ with the given protocol id and payload to server
// and returns the raw answer; Query is built on it, and it serves callers that
// need another protocol id or a payload of their own (tests of a server's
// TALKREQ handling). A lost packet is retried until ctx ends (discv5 bounds
// each attempt itself, about 700 ms); then the error wraps ErrNoAnswer. An
// empty answer is returned as is, with a nil error: that is how discv5 says
// "no handler" and how a vflux server drops a request.
func (c *Client) Talk(ctx context.Context, server *enode.Node, protocol string, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.QueryTimeout)
	defer cancel()
	disc := c.srv.DiscoveryV5()
	type result struct {
		resp []byte
		err  error
	}
	var lastErr error
	for {
		ch := make(chan result, 1)
		go func() {
			resp, err := disc.TalkRequest(server, protocol, payload)
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
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoAnswer, server.ID().TerminalString(), lastErr)
		}
	}
}

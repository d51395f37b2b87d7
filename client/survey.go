package client

import (
	"context"
	"math/big"
	"sort"
	"sync"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// Policy orders offers: Better reports whether a should be preferred to b.
type Policy func(a, b *Offer) bool

// ByCapacityFor prefers the most capacity for amount tokens; among equals, the
// lower price per capacity, then the lower load (active capacity over the
// maximum), then the larger minimum capacity (what every active client gets
// even for free). An offer that was not asked about amount counts as 0.
func ByCapacityFor(amount *big.Int) Policy {
	return func(a, b *Offer) bool {
		ca, _ := a.CapacityFor(amount)
		cb, _ := b.CapacityFor(amount)
		if ca != cb {
			return ca > cb
		}
		pa, la, ma := terms(a)
		pb, lb, mb := terms(b)
		if pa != pb {
			return pa < pb
		}
		if la != lb {
			return la < lb
		}
		return ma > mb
	}
}

// terms returns an offer's capacity price, load and minimum capacity; an
// offer without info sorts after those with it.
func terms(o *Offer) (price uint64, load float64, mincap uint64) {
	if o.Info == nil {
		return ^uint64(0), 2, 0
	}
	load = 1
	if o.Info.MaxCap > 0 {
		load = float64(o.Info.ActiveCap) / float64(o.Info.MaxCap)
	}
	return o.Info.PosFactors[1], load, o.Info.MinCap
}

// Load returns the share of the server's capacity in use (0..1), or -1 when it
// did not say.
func (o *Offer) Load() float64 {
	if o.Info == nil {
		return -1
	}
	_, load, _ := terms(o)
	return load
}

// Rank sorts offers best first by policy (stable: equal offers keep their
// order).
func Rank(offers []*Offer, policy Policy) {
	sort.SliceStable(offers, func(i, j int) bool { return policy(offers[i], offers[j]) })
}

// IsServer reports whether a node record carries the "vfx" entry of a vflux
// serving node.
func IsServer(n *enode.Node) bool {
	var entry rlp.RawValue
	return n.Load(enr.WithEntry(params.ENRKey, &entry)) == nil
}

// crawlLimit bounds how many nodes Discover asks for their neighbours
// directly, and crawlDistances are the log distances it asks for: together
// they cover a small network (a bootnode and a few servers) at once, where
// random lookups (one a second, each seeing a few buckets of each node)
// could take minutes to come across every server.
const crawlLimit = 64

var crawlDistances = []uint{256, 255, 254, 253, 252, 251, 250, 249, 248, 247, 246, 245, 244, 243, 242, 241}

// Discover walks discv5 from the bootnodes and sends every distinct vflux
// server it finds (records with the "vfx" entry) to found, until ctx ends or
// limit servers were sent (0 = no limit). It closes found when it returns.
// It crawls (asks the bootnodes and the nodes they name for their
// neighbours, up to crawlLimit nodes) and runs random lookups at the same
// time.
func (c *Client) Discover(ctx context.Context, limit int, found chan<- *enode.Node) {
	defer close(found)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Both sources stop when ctx ends; Discover does not wait for them (a
	// FINDNODE in flight may take its own timeout to return), so the search
	// ends with ctx.
	nodes := make(chan *enode.Node)
	go c.crawl(ctx, nodes)
	go func() {
		it := c.srv.DiscoveryV5().RandomNodes()
		go func() {
			<-ctx.Done()
			it.Close() // unblocks Next
		}()
		for it.Next() {
			select {
			case nodes <- it.Node():
			case <-ctx.Done():
				return
			}
		}
	}()

	seen := make(map[enode.ID]bool)
	for {
		var n *enode.Node
		select {
		case n = <-nodes:
		case <-ctx.Done():
			return
		}
		if !IsServer(n) || seen[n.ID()] || n.ID() == c.Self().ID() {
			continue
		}
		seen[n.ID()] = true
		select {
		case found <- n:
		case <-ctx.Done():
			return
		}
		if limit > 0 && len(seen) >= limit {
			return
		}
	}
}

// crawl asks the bootnodes, then every node they name, for the nodes at the
// top log distances, and sends each node it learns of to out.
func (c *Client) crawl(ctx context.Context, out chan<- *enode.Node) {
	disc := c.srv.DiscoveryV5()
	queue := append([]*enode.Node(nil), c.cfg.Bootnodes...)
	asked := make(map[enode.ID]bool)
	for len(queue) > 0 && len(asked) < crawlLimit && ctx.Err() == nil {
		n := queue[0]
		queue = queue[1:]
		if asked[n.ID()] || n.ID() == c.Self().ID() {
			continue
		}
		asked[n.ID()] = true
		neighbours, _ := disc.Findnode(n, crawlDistances) // a silent node just adds nothing
		for _, m := range neighbours {
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
			if !asked[m.ID()] {
				queue = append(queue, m)
			}
		}
	}
}

// Progress reports a survey's state: servers found, queried (answered or
// failed) and answered so far.
type Progress struct {
	Found, Queried, Answered int
}

// Survey finds servers (Config.Servers and, with bootnodes, discovery) and
// queries them in parallel (Config.Concurrency at a time, each within
// Config.QueryTimeout), until ctx ends or limit servers have answered
// (0 = no limit). It returns the answers ranked by Config.Policy; servers
// that did not answer are left out (and do not hold the survey up beyond
// QueryTimeout). progress, when not nil, is called after each change from
// one goroutine at a time.
func (c *Client) Survey(ctx context.Context, limit int, progress func(Progress)) ([]*Offer, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	candidates := make(chan *enode.Node)
	go func() {
		defer close(candidates)
		seen := make(map[enode.ID]bool)
		send := func(n *enode.Node) bool {
			if seen[n.ID()] {
				return true
			}
			seen[n.ID()] = true
			select {
			case candidates <- n:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, n := range c.cfg.Servers {
			if !send(n) {
				return
			}
		}
		if len(c.cfg.Bootnodes) == 0 {
			return
		}
		found := make(chan *enode.Node)
		go c.Discover(ctx, 0, found)
		for n := range found {
			send(n) // after ctx ends Discover returns at once; drain it
		}
	}()

	var (
		mu     sync.Mutex
		offers []*Offer
		state  Progress
		wg     sync.WaitGroup
		sem    = make(chan struct{}, c.cfg.Concurrency)
	)
	report := func(change func(*Progress)) {
		mu.Lock()
		defer mu.Unlock()
		change(&state)
		if progress != nil {
			progress(state)
		}
	}
	for n := range candidates {
		report(func(p *Progress) { p.Found++ })
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue // drain candidates; the producer stops soon
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			offer, err := c.Query(ctx, n)
			report(func(p *Progress) {
				p.Queried++
				if err != nil {
					return
				}
				p.Answered++
				offers = append(offers, offer)
				if limit > 0 && len(offers) >= limit {
					cancel()
				}
			})
		}()
	}
	wg.Wait()
	if limit > 0 && len(offers) > limit {
		offers = offers[:limit]
	}
	Rank(offers, c.cfg.Policy)
	if len(offers) == 0 {
		return nil, ErrNoServers
	}
	return offers, nil
}

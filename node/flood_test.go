package node

import (
	"context"
	"errors"
	"math/big"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/discover"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

// floodAddr is 127.0.0.x: Linux routes all of 127.0.0.0/8 to the loopback
// interface, so each is a distinct source address without any setup.
func floodAddr(x int) net.IP { return net.IPv4(127, 0, 0, byte(x)) }

// floodBatch is the most expensive batch a flooder can send in one discv5
// packet: 16 capacity queries (a batch costs its number of requests) of one
// amount each (16 amounts each would not fit in the 1280-byte packet).
func floodBatch(t *testing.T) []byte {
	t.Helper()
	var reqs vflux.Requests
	cq := vflux.CapacityQueryReq{AddTokens: make([]vflux.IntOrInf, 1)}
	cq.AddTokens[0].SetInt64(1_000_000_000)
	for range params.MaxRequestsPerBatch {
		if _, err := reqs.Add(params.ServiceName, vflux.CapacityQueryName, &cq); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := rlp.EncodeToBytes(reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > 1000 {
		t.Fatalf("flood batch of %d bytes does not fit in a discv5 packet", len(enc))
	}
	return enc
}

// flooder is a discv5 endpoint with its own key on a given address. All
// flooders share one in-memory node database: each go-ethereum enode.DB
// allocates a 4 MiB write buffer, which would make the test process's heap
// mostly flooder overhead instead of the server's.
type flooder struct {
	disc *discover.UDPv5
}

func newFlooder(db *enode.DB, ip net.IP) (*flooder, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	ln := enode.NewLocalNode(db, key)
	ln.SetStaticIP(ip)
	ln.SetFallbackUDP(conn.LocalAddr().(*net.UDPAddr).Port)
	disc, err := discover.ListenV5(conn, ln, discover.Config{PrivateKey: key})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &flooder{disc: disc}, nil
}

// floodStats counts one group of flooders' TALKREQs.
type floodStats struct {
	sent, answered, empty, failed atomic.Int64
}

// flood sends TALKREQs from addr with concurrency goroutines until ctx ends.
// With freshIDs every querier is used for only a few requests and replaced
// by one with a new key (a new node ID, a new discv5 handshake).
func flood(ctx context.Context, t *testing.T, db *enode.DB, server *enode.Node, addr net.IP, concurrency int, freshIDs bool, batch []byte, st *floodStats, wg *sync.WaitGroup) {
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var q *flooder
			used := 0
			defer func() {
				if q != nil {
					q.disc.Close()
				}
			}()
			for ctx.Err() == nil {
				if q == nil || (freshIDs && used >= 4) {
					if q != nil {
						q.disc.Close()
					}
					var err error
					if q, err = newFlooder(db, addr); err != nil {
						t.Errorf("flooder on %v: %v", addr, err)
						return
					}
					used = 0
				}
				used++
				st.sent.Add(1)
				resp, err := q.disc.TalkRequest(server, params.TalkProtocolID, batch)
				switch {
				case err != nil:
					st.failed.Add(1)
				case len(resp) == 0:
					st.empty.Add(1)
				default:
					st.answered.Add(1)
				}
			}
		}()
	}
}

// TestTalkFloodLeavesHonestClientsAnswered floods an in-process node's
// TALKREQ handler from two groups at once, fresh node IDs from one address
// and many addresses (127.0.0.x), while three honest clients on their own
// addresses ask a capacity query once a second. The honest clients keep
// getting answers, the flood is dropped by the limiter (not queued: the
// server answers no more than its rate), and the server's heap and
// goroutines stay bounded. VFLUX_FLOOD_SECS sets the length (default 8 s),
// VFLUX_FLOOD_RATE the node's request rate (default params.DefaultServerRate).
func TestTalkFloodLeavesHonestClientsAnswered(t *testing.T) {
	secs := envCount(t, floodSecsEnv, 8)
	cfg := testConfig(10)
	if r := os.Getenv("VFLUX_FLOOD_RATE"); r != "" {
		cfg.RequestRate, _ = strconv.ParseFloat(r, 64)
	}
	n := startNode(t, cfg, "", false)
	server := n.stack.Server().DiscoveryV5().Self()
	batch := floodBatch(t)

	runtime.GC()
	baseline := runtime.NumGoroutine()
	sampler := startHeapSampler(10 * time.Millisecond)
	before := n.svc.server.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	var (
		wg                 sync.WaitGroup
		oneAddr, manyAddrs floodStats
	)
	db, err := enode.OpenDB("")
	if err != nil {
		t.Fatal(err)
	}
	// Fresh IDs from one address: 16 concurrent senders on 127.0.0.2.
	flood(ctx, t, db, server, floodAddr(2), 16, true, batch, &oneAddr, &wg)
	// Many addresses: 32 addresses with 2 senders each, a few IDs each.
	for a := range 32 {
		flood(ctx, t, db, server, floodAddr(10+a), 2, true, batch, &manyAddrs, &wg)
	}

	// Honest clients on 127.0.0.101-103, one query a second each.
	type honestResult struct {
		asked, answered, empty int
		// Queries asked, answered and dropped by the limiter after the
		// client's first answer.
		askedOnceKnown, answeredOnceKnown, droppedOnceKnown int
		// Whether the client's very first query was answered, and the
		// latency of its first answer.
		firstAnswered bool
		firstLatency  time.Duration
		latencies     []time.Duration
	}
	honest := make([]honestResult, 3)
	for i := range honest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, err := crypto.GenerateKey()
			if err != nil {
				t.Errorf("honest client key: %v", err)
				return
			}
			c, err := client.New(client.Config{PrivateKey: key, ListenIP: floodAddr(101 + i), QueryTimeout: time.Second})
			if err != nil {
				t.Errorf("honest client: %v", err)
				return
			}
			defer c.Close()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				known := honest[i].answered > 0
				t0 := time.Now()
				res, err := c.QueryAmounts(context.Background(), server, []*big.Int{big.NewInt(0), big.NewInt(1e12)})
				honest[i].asked++
				if known {
					honest[i].askedOnceKnown++
				}
				switch {
				case err == nil && len(res.Capacities) == 2 && res.Capacities[0] == cfg.MinCap:
					honest[i].answered++
					if known {
						honest[i].answeredOnceKnown++
					} else {
						honest[i].firstAnswered = honest[i].asked == 1
						honest[i].firstLatency = time.Since(t0)
					}
					honest[i].latencies = append(honest[i].latencies, time.Since(t0))
				case errors.Is(err, client.ErrEmptyAnswer):
					honest[i].empty++ // dropped by the limiter
					if known {
						honest[i].droppedOnceKnown++
					}
				}
			}
		}()
	}
	wg.Wait()
	peakHeap, peakG := sampler.stop()
	stats := n.svc.server.Stats()
	served, dropped := stats.Served-before.Served, stats.Dropped-before.Dropped

	var asked, answered, empty, askedOnceKnown, answeredOnceKnown, droppedOnceKnown, firstAnswered int
	var lat, firstLat []time.Duration
	for _, h := range honest {
		if h.firstAnswered {
			firstAnswered++
		}
		if h.answered > 0 {
			firstLat = append(firstLat, h.firstLatency)
		}
		asked += h.asked
		answered += h.answered
		empty += h.empty
		askedOnceKnown += h.askedOnceKnown
		answeredOnceKnown += h.answeredOnceKnown
		droppedOnceKnown += h.droppedOnceKnown
		lat = append(lat, h.latencies...)
	}
	slices.Sort(lat)
	frac := float64(answered) / float64(max(asked, 1))
	t.Logf("flood for %d s: one address with fresh IDs sent %d (%d answered, %d empty, %d timed out); 32 addresses sent %d (%d answered, %d empty, %d timed out)",
		secs, oneAddr.sent.Load(), oneAddr.answered.Load(), oneAddr.empty.Load(), oneAddr.failed.Load(),
		manyAddrs.sent.Load(), manyAddrs.answered.Load(), manyAddrs.empty.Load(), manyAddrs.failed.Load())
	t.Logf("server: %d batches served, %d dropped by the limiter (rate %v/s); honest clients: %d of %d answered (%.0f%%, %d dropped by the limiter, the rest timed out), latency p50 %v max %v; peak heap %.1f MiB, peak goroutines %d (baseline %d)",
		served, dropped, cfg.RequestRate, answered, asked, 100*frac, empty, percentile(lat, 50), percentile(lat, 100),
		float64(peakHeap)/(1<<20), peakG, baseline)
	askedNew, droppedNew := asked-askedOnceKnown, empty-droppedOnceKnown
	t.Logf("honest clients before their first answer (newcomers): %d of %d answered, %d dropped by the limiter; first queries answered: %d of %d; latency of the first answers %v",
		answered-answeredOnceKnown, askedNew, droppedNew, firstAnswered, len(honest), firstLat)
	t.Logf("honest clients after their first answer: %d of %d answered, %d dropped by the limiter", answeredOnceKnown, askedOnceKnown, droppedOnceKnown)

	if dropped == 0 {
		t.Errorf("the flood was never dropped (%d served, %d dropped): it did not exceed the server's rate", served, dropped)
	}
	// Not queued without limit: the server answered at most its rate (plus a
	// second's burst); a batch costs its number of requests, at least 3 here.
	if limit := uint64(cfg.RequestRate * float64(secs+1) / 3); cfg.RequestRate > 0 && served > limit {
		t.Errorf("server answered %d batches in %d s, above its rate %v/s", served, secs, cfg.RequestRate)
	}
	if asked < 3*(secs-2) {
		t.Errorf("honest clients asked only %d times in %d s", asked, secs)
	}
	// A client's first query is a newcomer's: until it has been answered once
	// its address is new, and in the flood's first seconds the flood's own 33
	// addresses are new too, so the new class is backlogged with flood batches
	// and, right after serving one, is that batch's surcharge (48 ms at the
	// default rate) ahead of the established class. A newcomer that waited for
	// it missed the 50 ms TALKREQ bound: the limiter dropped 12 of 42 newcomer
	// queries in 10 race runs, more than one in 4 of them. Now a flood batch
	// served from the new class lets light batches (this query costs 3) go
	// ahead (vflux scheduler: newcomer credit): 15 of 15 first queries
	// answered in 5 race runs, 15 of 15 in 5 without race. At most one
	// newcomer query a run may still be dropped: a query at the head of the
	// queue can miss its 50 ms when the loaded 2-core machine stalls the
	// process under -race, as happens to established clients' queries.
	if droppedNew > 1 {
		t.Errorf("the limiter dropped %d of %d queries of new honest clients (before their first answer)", droppedNew, askedNew)
	}
	// Once answered, a client sends far below its fair share and is served
	// ahead of the flood's backlogs (fresh, in the scheduler), so the limiter
	// answers its queries: before that fix it dropped most of them (24-33%
	// answered in all). The same stalls under -race dropped 2 of 16 and 5 of
	// 18 (another package's race tests sharing the 2 cores), hence at most
	// half, not zero: the scheduler before the fix dropped 12 of 13.
	// (Queries that time out are lost in the flooded discv5 socket, not by
	// the limiter.)
	if droppedOnceKnown > 0 && 2*droppedOnceKnown > askedOnceKnown {
		t.Errorf("the limiter dropped %d of %d honest queries of clients it had answered before", droppedOnceKnown, askedOnceKnown)
	}
	if answered == 0 {
		t.Errorf("honest clients got no answer at all in %d queries", asked)
	}
	if limit := uint64(256 << 20); peakHeap > limit {
		t.Errorf("peak heap %d MiB during the flood, over %d MiB", peakHeap>>20, limit>>20)
	}
	db.Close()
	waitGoroutines(t, baseline)
}

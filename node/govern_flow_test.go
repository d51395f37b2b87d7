package node

import (
	"bytes"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/protocol"
	"runtime"
	"testing"
)

// A flooder's queue never empties; its backing array must still stay within
// a small multiple of what the byte bound lets it hold.
func TestAQueueThatNeverEmptiesDoesNotGrowWithoutBound(t *testing.T) {
	f := registeredFlow(t, 64*100)
	st := f.newStream("eth", &endlessSource{payload: bytes.NewReader(make([]byte, 64))})
	go st.pump()
	defer st.end()
	for i := 0; i < 2000; i++ {
		// The pump refills the queue to its bound before each read.
		for _, _, q := f.stats(); q < 64*100; _, _, q = f.stats() {
			runtime.Gosched()
		}
		if _, err := st.ReadMsg(); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		c := cap(st.queue)
		f.mu.Unlock()
		if c > 4*100 {
			t.Fatalf("after %d messages the queue's array holds %d messages for a bound of 100", i, c)
		}
	}
}

// The cost table replaces the size-based cost of the listed codes of its
// protocol only.
func TestTheCostTablePricesItsCodes(t *testing.T) {
	f := registeredFlow(t, governQueueBytes, MessageCost{Protocol: "eth", Code: 5, Cost: 7777}, MessageCost{Protocol: "snap", Code: 6, Cost: 1})
	src := make(chan p2p.Msg, 3)
	st := f.newStream("eth", chanSource(src))
	go st.pump()
	defer st.end()
	for _, code := range []uint64{0, 5, 6} { // 0 is the handshake, unmetered
		src <- p2p.Msg{Code: code, Size: 64, Payload: bytes.NewReader(make([]byte, 64))}
		if m, err := st.ReadMsg(); err != nil || m.Code != code {
			t.Fatalf("read code %d: got %d, %v", code, m.Code, err)
		}
	}
	want := uint64(7777) + protocol.AdmissionCost(params.RequestCostBase, params.RequestCostPerKB, 64)
	if served, _, _ := f.stats(); served != want {
		t.Errorf("charged %d, want %d (7777 for code 5 from the table, the flat cost for code 6)", served, want)
	}
}

// chanSource is a connection whose inbound messages a test sends.
type chanSource chan p2p.Msg

func (c chanSource) ReadMsg() (p2p.Msg, error) { return <-c, nil }
func (c chanSource) WriteMsg(p2p.Msg) error    { return nil }

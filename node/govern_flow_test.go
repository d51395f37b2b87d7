package node

import (
	"bytes"
	"runtime"
	"testing"
)

// A flooder's queue never empties; its backing array must still stay within
// a small multiple of what the byte bound lets it hold.
func TestAQueueThatNeverEmptiesDoesNotGrowWithoutBound(t *testing.T) {
	f := registeredFlow(t, 64*100)
	st := f.newStream(&endlessSource{payload: bytes.NewReader(make([]byte, 64))})
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

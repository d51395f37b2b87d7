package clientpool_test

import (
	"encoding/binary"
	"testing"
)

// byteChooser decodes fuzz input into the operation choices of poolModel.step:
// each choice takes the next byte(s) of the input, and the sequence ends when the
// input does. Short or zero input still decodes to a valid sequence.
type byteChooser struct {
	data []byte
	pos  int
}

func (c *byteChooser) next() byte {
	if c.pos >= len(c.data) {
		c.pos++ // keeps done() true
		return 0
	}
	b := c.data[c.pos]
	c.pos++
	return b
}

func (c *byteChooser) intn(n int) int {
	if n <= 256 {
		return int(c.next()) % n
	}
	return int(uint16(c.next())<<8|uint16(c.next())) % n
}

func (c *byteChooser) uint64() uint64 {
	var b [8]byte
	for i := range b {
		b[i] = c.next()
	}
	return binary.BigEndian.Uint64(b[:])
}

func (c *byteChooser) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c.next()
	}
	return b
}

func (c *byteChooser) done() bool { return c.pos >= len(c.data) }

// maxFuzzSteps bounds one fuzz input's work so that every input runs quickly.
const maxFuzzSteps = 3000

// FuzzPoolOperations decodes the input into the property test's operation
// sequence (register, unregister, limits, bias, factors, expiration,
// SetCapacity, balance operations, queries including corrupted ones, time steps)
// and checks SPEC 3.2's invariants after every step. The first byte picks minCap.
// Seed corpus: testdata/fuzz/FuzzPoolOperations. Run it with
//
//	go test ./clientpool/ -run '^$' -fuzz FuzzPoolOperations -fuzztime 60s
func FuzzPoolOperations(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 5, 3, 1, 0, 16, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &byteChooser{data: data}
		minCaps := []uint64{1, 10, 100, 1000}
		m := newPoolModel(t, minCaps[c.intn(len(minCaps))])
		for i := 0; i < maxFuzzSteps && !c.done(); i++ {
			m.step(c)
		}
		m.finish()
	})
}

package protocol

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

func TestMeterRules(t *testing.T) {
	tests := []struct {
		name string
		run  func(m *meter, clock *mclock.Simulated) (time.Duration, bool)
		wait time.Duration
		ok   bool
	}{
		{"a full buffer admits a request", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			return m.admit(1000)
		}, 0, true},
		{"an empty buffer waits cost/rate", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			m.charge(5000)
			return m.admit(250) // 250 units at 1000/s
		}, 250 * time.Millisecond, false},
		{"recharging for the wait is enough", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			m.charge(5000)
			c.Run(250 * time.Millisecond)
			return m.admit(250)
		}, 0, true},
		{"the buffer never fills past rate*BufferSecs", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			c.Run(time.Hour)
			m.charge(5000)
			return m.admit(1)
		}, time.Millisecond, false},
		{"a reply overdraws below zero and must be earned back", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			m.charge(6000) // buffer -1000
			return m.admit(1000)
		}, 2 * time.Second, false},
		{"a request bigger than the buffer waits for a full buffer", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			m.charge(1000)
			return m.admit(1 << 40)
		}, time.Second, false},
		{"a raise keeps a full buffer full", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			m.setRate(4000)
			return m.admit(20000)
		}, 0, true},
		{"a raise keeps the deficit", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			m.charge(3000)
			m.setRate(4000) // buffer 17000 of 20000
			return m.admit(20000)
		}, 750 * time.Millisecond, false},
		{"a cut clamps the buffer", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			m.setRate(100) // buffer 500
			return m.admit(600)
		}, 0, true}, // 600 > whole buffer (500): admitted once the buffer is full
		{"a cut recharges slower", func(m *meter, c *mclock.Simulated) (time.Duration, bool) {
			m.setRate(100)
			m.charge(500)
			return m.admit(100)
		}, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := new(mclock.Simulated)
			m := newMeter(clock, 1000, 5)
			wait, ok := tt.run(m, clock)
			if wait != tt.wait || ok != tt.ok {
				t.Fatalf("admit = %v, %v; want %v, %v", wait, ok, tt.wait, tt.ok)
			}
		})
	}
}

func TestMeteringAllocatesNothing(t *testing.T) {
	clock := new(mclock.Simulated)
	m := newMeter(clock, 1000, 5)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := m.admit(AdmissionCost(80, 100, 40)); ok {
			m.charge(RequestCost(80, 100, 40, 60))
		}
		clock.Run(time.Millisecond)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per metered request", allocs)
	}
}

package clientpool

import (
	"math"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

func TestExpiredValue(t *testing.T) {
	one := LogOffsetFromFloat(1)
	tests := []struct {
		name     string
		start    ExpiredValue
		amount   int64 // added at offset `at` before reading
		at       LogOffset
		read     LogOffset
		want     uint64
		wantDiff int64
	}{
		{"value {128,0} reads 128 at offset 0", ExpiredValue{128, 0}, 0, 0, 0, 128, 0},
		{"value {128,0} decays to 64 at offset 1", ExpiredValue{128, 0}, 0, 0, one, 64, 0},
		{"value {128,0} decays to 32 at offset 2", ExpiredValue{128, 0}, 0, 0, 2 * one, 32, 0},
		{"adding 128 to {128,2} at offset 1 reads 384", ExpiredValue{128, 2}, 128, one, one, 384, 128},
		{"subtracting 192 from {128,0} at offset 0 reads 0 and reports -128", ExpiredValue{128, 0}, -192, 0, 0, 0, -128},
		{"subtracting 64 from {128,0} at offset 0 reads 64", ExpiredValue{128, 0}, -64, 0, 0, 64, -64},
		{"adding at a later offset shifts the base and raises the exponent", ExpiredValue{128, 0}, 64, 2 * one, 2 * one, 96, 64},
		{"adding at a fractional offset reads back the amount", ExpiredValue{}, 1000, LogOffsetFromFloat(0.5), LogOffsetFromFloat(0.5), 1000, 1000},
		{"a zero value stays zero at every offset", ExpiredValue{}, 0, 0, 5 * one, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.start
			diff := v.Add(tt.amount, tt.at)
			if got := v.Value(tt.read); got != tt.want {
				t.Errorf("value %d, want %d (raw %+v)", got, tt.want, v)
			}
			if diff != tt.wantDiff {
				t.Errorf("reported change %d, want %d", diff, tt.wantDiff)
			}
			if tt.amount != 0 && tt.at.integer() > tt.start.Exp && v.Exp != tt.at.integer() {
				t.Errorf("exponent %d not raised to %d", v.Exp, tt.at.integer())
			}
		})
	}
}

func TestExpiredValueSums(t *testing.T) {
	one := LogOffsetFromFloat(1)
	tests := []struct {
		name string
		a, b ExpiredValue
		sub  bool
		at   LogOffset
		want uint64
	}{
		{"sum of equal exponents adds bases", ExpiredValue{100, 3}, ExpiredValue{28, 3}, false, 3 * one, 128},
		{"sum with a larger second exponent aligns the first", ExpiredValue{128, 0}, ExpiredValue{128, 2}, false, 2 * one, 160},
		{"sum with a smaller second exponent aligns the second", ExpiredValue{128, 2}, ExpiredValue{128, 0}, false, 2 * one, 160},
		{"difference with different exponents aligns them", ExpiredValue{128, 2}, ExpiredValue{128, 0}, true, 2 * one, 96},
		{"difference larger than the value saturates at zero", ExpiredValue{128, 0}, ExpiredValue{128, 2}, true, 2 * one, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.a
			if tt.sub {
				v.SubExp(tt.b)
			} else {
				v.AddExp(tt.b)
			}
			if got := v.Value(tt.at); got != tt.want {
				t.Errorf("value %d, want %d (raw %+v)", got, tt.want, v)
			}
		})
	}
}

func TestExpirationClockUsesEFoldingTimes(t *testing.T) {
	tests := []struct {
		name    string
		tc      uint64
		elapsed time.Duration
		want    float64 // fraction of the value left
	}{
		{"no time constant never expires", 0, 100 * time.Hour, 1},
		{"one time constant leaves 1/e", 3600, time.Hour, 1 / math.E},
		{"two time constants leave 1/e^2", 100, 200 * time.Second, 1 / (math.E * math.E)},
		{"a half-life of ln2 time constants leaves half", 10387, 2 * time.Hour, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c expClock
			c.setTC(0, tt.tc)
			v := ExpiredValue{}
			v.Add(1e12, c.at(0))
			got := float64(v.Value(c.at(mclock.AbsTime(tt.elapsed)))) / 1e12
			if math.Abs(got-tt.want) > 0.001*tt.want {
				t.Errorf("fraction left %f, want %f", got, tt.want)
			}
		})
	}
}

func TestExpirationClockStaysContinuousWhenTheTimeConstantChanges(t *testing.T) {
	var c expClock
	c.setTC(0, 100)
	before := c.at(mclock.AbsTime(50 * time.Second))
	c.setTC(mclock.AbsTime(50*time.Second), 1000)
	if after := c.at(mclock.AbsTime(50 * time.Second)); after != before {
		t.Fatalf("offset jumped from %d to %d", before, after)
	}
	if later := c.at(mclock.AbsTime(60 * time.Second)); later <= before {
		t.Fatalf("offset did not grow after the change")
	}
}

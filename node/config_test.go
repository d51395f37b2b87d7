package node

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
)

func TestDefaultConfigFollowsSpec9(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if got, want := c.TotalCapacity(), c.MaxClients*c.MinCap*10; got != want {
		t.Errorf("default capacity %d, want maxclients*mincap*10 = %d", got, want)
	}
	if c.InactiveSlots() != c.MaxClients {
		t.Errorf("default inactive slots %d, want maxclients %d", c.InactiveSlots(), c.MaxClients)
	}
	if pos, neg := c.ExpirationTCs(); pos != 0 || neg != 3600 {
		t.Errorf("expiration TCs (%d, %d), want (0, 3600)", pos, neg)
	}
	if c.ConnectedBias != 3*time.Minute || c.ServiceName != "vfx" || c.Serve {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestPricesConvertToPerNanosecondFactors(t *testing.T) {
	p := Prices{Time: 2e9, Capacity: 1e9, Request: 3}
	f := p.PoolFactors()
	if f.TimeFactor != 2 || f.CapacityFactor != 1 || f.RequestFactor != 3 {
		t.Errorf("PoolFactors = %+v, want time 2/ns, capacity 1/ns, request 3 (unscaled)", f)
	}
	if back := PricesFromPool(f); back != p {
		t.Errorf("round trip gave %+v, want %+v", back, p)
	}
}

func TestValidateRejectsBadConfigs(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"an empty service name", func(c *Config) { c.ServiceName = "" }, "service name"},
		{"a service name with a colon", func(c *Config) { c.ServiceName = "a:b" }, "':'"},
		{"the legacy service name", func(c *Config) { c.ServiceName = "les" }, "reserved"},
		{"zero maxclients", func(c *Config) { c.MaxClients = 0 }, "maxclients"},
		{"absurd maxclients", func(c *Config) { c.MaxClients = 1 << 40 }, "maxclients"},
		{"zero mincap", func(c *Config) { c.MinCap = 0 }, "mincap"},
		{"a mincap that overflows the default capacity", func(c *Config) { c.MinCap = math.MaxUint64 / 2 }, "too large"},
		{"capacity below mincap", func(c *Config) { c.Capacity = 5 }, "below mincap"},
		{"a negative bias", func(c *Config) { c.ConnectedBias = -time.Second }, "bias"},
		{"a negative allowance", func(c *Config) { c.InactiveAllowance = -time.Second }, "allowance"},
		{"a sub-second expiration", func(c *Config) { c.NegExpiration = time.Millisecond }, "below 1s"},
		{"a negative price", func(c *Config) { c.PosPrices.Request = -1 }, "negative"},
		{"a NaN price", func(c *Config) { c.NegPrices.Time = math.NaN() }, "finite"},
		{"an infinite rate", func(c *Config) { c.RequestRate = math.Inf(1) }, "request rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestConfigureP2PLeavesNonServingNodesAlone(t *testing.T) {
	p := p2p.Config{MaxPeers: 50}
	ConfigureP2P(&p, DefaultConfig(), false)
	if p.NoDial || p.MaxPeers != 50 {
		t.Errorf("non-serving node changed: NoDial=%v MaxPeers=%d", p.NoDial, p.MaxPeers)
	}
}

func TestOneInactiveSlotIsKeptFreeForNewcomers(t *testing.T) {
	tests := []struct {
		maxClients, maxInactive uint64
		wantPeers, wantPool     int
	}{
		{100, 0, 200, 99}, // maxinactive defaults to maxclients
		{3, 2, 5, 1},
		{10, 1, 11, 1}, // nothing can be kept free with one slot
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Serve, c.MaxClients, c.MaxInactive = true, tt.maxClients, tt.maxInactive
		var p p2p.Config
		ConfigureP2P(&p, c, false)
		if p.MaxPeers != tt.wantPeers || c.PoolMaxInactive() != tt.wantPool {
			t.Errorf("maxclients %d, maxinactive %d: MaxPeers %d, pool bound %d; want %d, %d",
				tt.maxClients, tt.maxInactive, p.MaxPeers, c.PoolMaxInactive(), tt.wantPeers, tt.wantPool)
		}
	}
}

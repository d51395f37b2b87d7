package node

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/params"
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

func TestPricesTypedInEdgeUnitsReadBackAsTyped(t *testing.T) {
	// x/1e9*1e9 != x for about one in twenty prices with two decimals.
	for i := 1; i <= 100000; i++ {
		x := float64(i) / 100
		p := Prices{Time: x, Capacity: float64(i) * 1e4, Request: x}
		if back := PricesFromPool(p.PoolFactors()); back != p {
			t.Fatalf("%+v read back as %+v", p, back)
		}
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
		{"an infinite rate", func(c *Config) { c.RequestRate = math.Inf(1) }, "RequestRate"},
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

func TestValidateBoundsEverySizeSettingAndNamesItsKey(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		ok     bool
		want   string // the key and the allowed range, verbatim
	}{
		{"the cache that killed a node", func(c *Config) { c.DatabaseCache = 100000000 }, false, "DatabaseCache 100000000 is out of range: allowed 0 to 1024 MiB"},
		{"a negative cache", func(c *Config) { c.DatabaseCache = -1 }, false, "DatabaseCache -1 is out of range: allowed 0 to 1024"},
		{"the largest cache", func(c *Config) { c.DatabaseCache = params.DatabaseCacheLimit }, true, ""},
		{"no cache (the minimum)", func(c *Config) { c.DatabaseCache = 0 }, true, ""},
		{"absurd handles", func(c *Config) { c.DatabaseHandles = 1 << 30 }, false, "DatabaseHandles 1073741824 is out of range: allowed 0 to 1024"},
		{"negative handles", func(c *Config) { c.DatabaseHandles = -5 }, false, "DatabaseHandles -5 is out of range"},
		{"the most handles", func(c *Config) { c.DatabaseHandles = params.DatabaseHandlesLimit }, true, ""},
		{"absurd maxclients", func(c *Config) { c.MaxClients = 1 << 40 }, false, "MaxClients (--vflux.maxclients) 1099511627776 is out of range: allowed 1 to 1048576"},
		{"zero maxclients", func(c *Config) { c.MaxClients = 0 }, false, "MaxClients (--vflux.maxclients) 0 is out of range: allowed 1 to"},
		{"the most clients", func(c *Config) { c.MaxClients, c.MaxInactive = params.ClientsLimit, params.ClientsLimit }, true, ""},
		{"absurd maxinactive", func(c *Config) { c.MaxInactive = params.ClientsLimit + 1 }, false, "MaxInactive (--vflux.maxinactive) 1048577 is out of range: allowed 0 to 1048576"},
		{"absurd queued cost", func(c *Config) { c.MaxQueuedCost = math.MaxUint64 }, false, "MaxQueuedCost 18446744073709551615 is out of range: allowed 0 to 16777216"},
		{"the default queued cost", func(c *Config) { c.MaxQueuedCost = 0 }, true, ""},
		{"a rate too high", func(c *Config) { c.RequestRate = 1e12 }, false, "RequestRate 1e+12 is out of range: allowed 0.01 to 1e+09"},
		{"a rate too low", func(c *Config) { c.RequestRate = 1e-12 }, false, "RequestRate 1e-12 is out of range"},
		{"a negative rate", func(c *Config) { c.RequestRate = -1 }, false, "RequestRate -1 is out of range"},
		{"a NaN rate", func(c *Config) { c.RequestRate = math.NaN() }, false, "RequestRate NaN is out of range"},
		{"an unlimited rate", func(c *Config) { c.RequestRate = 0 }, true, ""},
		{"the lowest rate", func(c *Config) { c.RequestRate = params.MinRequestRate }, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

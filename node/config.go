package node

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid vflux config")

// Prices are price factors in the units operators use (flags, config file and
// RPC): Time in tokens per second of active connection, Capacity in tokens per
// second per 1,000,000 units of capacity, Request in tokens per request cost
// unit.
type Prices struct {
	Time     float64
	Capacity float64
	Request  float64
}

// PoolFactors converts the edge units to the pool's per-nanosecond factors:
// time and capacity are divided by 1e9, the request factor is not scaled.
func (p Prices) PoolFactors() clientpool.PriceFactors {
	return clientpool.PriceFactors{
		TimeFactor:     p.Time / 1e9,
		CapacityFactor: p.Capacity / 1e9,
		RequestFactor:  p.Request,
	}
}

// PricesFromPool converts the pool's per-nanosecond factors back to edge
// units. Time and capacity are rounded to 15 significant digits: dividing by
// 1e9 and multiplying back can be an ulp off (0.37 came back as
// 0.37000000000000005), and a price typed with up to 15 digits must read back
// as typed.
func PricesFromPool(f clientpool.PriceFactors) Prices {
	return Prices{Time: perSecond(f.TimeFactor), Capacity: perSecond(f.CapacityFactor), Request: f.RequestFactor}
}

func perSecond(factor float64) float64 {
	v := factor * 1e9
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 15, 64), 64)
	if err != nil {
		return v
	}
	return r
}

func (p Prices) validate(what string) error {
	for _, v := range []struct {
		name string
		val  float64
	}{{"time", p.Time}, {"capacity", p.Capacity}, {"request", p.Request}} {
		if math.IsNaN(v.val) || math.IsInf(v.val, 0) {
			return fmt.Errorf("%w: %s %s price is not a finite number", ErrInvalidConfig, what, v.name)
		}
		if v.val < 0 {
			return fmt.Errorf("%w: %s %s price %v is negative", ErrInvalidConfig, what, v.name, v.val)
		}
	}
	return nil
}

// Config configures a vflux serving node. The zero value is not useful; start
// from DefaultConfig. Its TOML form is the [Vflux] section of the config file.
type Config struct {
	// Serve turns serving on. A node without it runs no vflux service at all.
	Serve bool
	// ServiceName is the vflux service name the client pool answers under
	// (besides the legacy "les", which is always registered too).
	ServiceName string
	// MaxClients is the most clients that are active at once.
	MaxClients uint64
	// Capacity is the total capacity shared by active clients; 0 means
	// MaxClients*MinCap*params.DefaultCapacityPerClient.
	Capacity uint64
	// MinCap is the capacity every active client gets at least.
	MinCap uint64
	// MaxInactive is the number of peer slots for clients waiting without
	// capacity; 0 means as many as MaxClients. One of them is kept free for
	// newcomers to be ranked (see PoolMaxInactive).
	MaxInactive uint64
	// MaxPerIP is the most clients connected at once from one IPv4 address
	// or IPv6 /64 (one free-client ID, see vflux.FreeClientID); 0 means
	// unlimited. Loopback clients count by node ID.
	MaxPerIP uint64
	// ConnectedBias protects an incumbent from newcomers for this long.
	ConnectedBias time.Duration
	// InactiveAllowance is how long a waiting free client stays connected.
	InactiveAllowance time.Duration
	// PosPrices spend the positive balance; NegPrices accrue the negative one.
	PosPrices, NegPrices Prices
	// PosExpiration and NegExpiration are the e-folding times of the balances
	// (0 = never expire). They are rounded to whole seconds.
	PosExpiration, NegExpiration time.Duration
	// RequestRate is the global rate of vflux requests served per second
	// (0 = unlimited); MaxQueuedCost bounds what waits in the limiter.
	RequestRate   float64
	MaxQueuedCost uint64
	// GovernCosts overrides the cost of inbound messages of governed
	// protocols by message code, where the flat size-based cost is wrong
	// (e.g. eth GetReceipts, whose work is not its size). Empty by default:
	// every message costs CostBase plus CostPerKB per KiB (SPEC 11).
	GovernCosts []MessageCost `toml:",omitempty"`
	// DatabaseCache (MiB) and DatabaseHandles size the balance LevelDB.
	DatabaseCache   int
	DatabaseHandles int
	// ResetSettings discards, at start, the limits, bias and default prices
	// saved by the RPC setters; otherwise they are restored and win over the
	// values above (see doc.go, "Settings changed over RPC").
	ResetSettings bool
	// Govern names the devp2p protocols registered on the same stack that the
	// pool governs (SPEC 11), e.g. "eth", "snap". Empty: only vfx/1.
	Govern []string

	// Clock is the pool's clock; nil means mclock.System. Tests use
	// mclock.Simulated.
	Clock mclock.Clock `toml:"-"`
}

// MessageCost is one entry of Config.GovernCosts: an inbound message of
// Protocol with Code (the protocol's own code, as its Run sees it) costs Cost
// cost units instead of CostBase plus CostPerKB per KiB. What the node sends
// back is still charged CostPerKB per KiB.
type MessageCost struct {
	Protocol string
	Code     uint64
	Cost     uint64
}

// DefaultConfig returns the defaults of SPEC 9 (serving off).
func DefaultConfig() Config {
	return Config{
		ServiceName:       params.ServiceName,
		MaxClients:        params.DefaultMaxClients,
		MaxPerIP:          params.DefaultMaxPerIP,
		MinCap:            params.DefaultMinCap,
		ConnectedBias:     params.DefaultConnectedBias,
		InactiveAllowance: params.DefaultInactiveAllowance,
		PosPrices:         defaultPrices(),
		NegPrices:         defaultPrices(),
		PosExpiration:     params.DefaultPosExpirationTC * time.Second,
		NegExpiration:     params.DefaultNegExpirationTC * time.Second,
		RequestRate:       params.DefaultServerRate,
		MaxQueuedCost:     params.DefaultMaxQueuedCost,
		DatabaseCache:     params.DefaultDatabaseCache,
		DatabaseHandles:   params.DefaultDatabaseHandles,
	}
}

func defaultPrices() Prices {
	return Prices{
		Time:     params.DefaultTimeFactor,
		Capacity: params.DefaultCapacityFactor,
		Request:  params.DefaultRequestFactor,
	}
}

// TotalCapacity is Capacity, or its default when Capacity is 0.
func (c Config) TotalCapacity() uint64 {
	if c.Capacity != 0 {
		return c.Capacity
	}
	return c.MaxClients * c.MinCap * params.DefaultCapacityPerClient
}

// InactiveSlots is MaxInactive, or MaxClients when MaxInactive is 0.
func (c Config) InactiveSlots() uint64 {
	if c.MaxInactive != 0 {
		return c.MaxInactive
	}
	return c.MaxClients
}

// PoolMaxInactive is the bound given to the pool's inactive set: one less
// than InactiveSlots, so that with every peer slot sized by ConfigureP2P one
// slot stays free and a newcomer (a paid client, say) can always connect and
// be ranked; if it then overflows the inactive set, the lowest-priority
// waiting client is disconnected. With a single inactive slot nothing can be
// kept free (the pool reads 0 as unlimited) and newcomers wait for the
// waiting client's allowance to run out.
func (c Config) PoolMaxInactive() int {
	if n := c.InactiveSlots(); n >= 2 {
		return int(n - 1)
	}
	return 1
}

// ExpirationTCs returns the time constants in whole seconds, as the pool takes them.
func (c Config) ExpirationTCs() (pos, neg uint64) {
	return uint64(c.PosExpiration / time.Second), uint64(c.NegExpiration / time.Second)
}

// maxSaneClients bounds MaxClients and MaxInactive (params.ClientsLimit).
const maxSaneClients = params.ClientsLimit

// outOfRange is the error for a size-like setting outside its bounds: it
// names the config key verbatim and the allowed range.
func outOfRange(key string, v, lo, hi any, unit string) error {
	return fmt.Errorf("%w: %s %v is out of range: allowed %v to %v%s", ErrInvalidConfig, key, v, lo, hi, unit)
}

// checkSizes bounds the settings that size memory, files or arithmetic
// (params.DatabaseCacheLimit and the constants next to it say why).
func (c Config) checkSizes() error {
	switch {
	case c.MaxClients == 0 || c.MaxClients > maxSaneClients:
		return outOfRange("MaxClients (--vflux.maxclients)", c.MaxClients, 1, maxSaneClients, "")
	case c.MaxInactive > maxSaneClients:
		return outOfRange("MaxInactive (--vflux.maxinactive)", c.MaxInactive, 0, maxSaneClients, " (0 = maxclients)")
	case c.MaxPerIP > maxSaneClients:
		return outOfRange("MaxPerIP (--vflux.maxperip)", c.MaxPerIP, 0, maxSaneClients, " (0 = unlimited)")
	case c.DatabaseCache < 0 || c.DatabaseCache > params.DatabaseCacheLimit:
		return outOfRange("DatabaseCache", c.DatabaseCache, 0, params.DatabaseCacheLimit,
			fmt.Sprintf(" MiB (below %d means %d)", params.MinDatabaseCache, params.MinDatabaseCache))
	case c.DatabaseHandles < 0 || c.DatabaseHandles > params.DatabaseHandlesLimit:
		return outOfRange("DatabaseHandles", c.DatabaseHandles, 0, params.DatabaseHandlesLimit,
			fmt.Sprintf(" (below %d means %d)", params.MinDatabaseHandles, params.MinDatabaseHandles))
	case c.MaxQueuedCost > params.MaxQueuedCostLimit:
		return outOfRange("MaxQueuedCost", c.MaxQueuedCost, 0, params.MaxQueuedCostLimit,
			fmt.Sprintf(" (0 = %d)", params.DefaultMaxQueuedCost))
	case math.IsNaN(c.RequestRate) || c.RequestRate != 0 && (c.RequestRate < params.MinRequestRate || c.RequestRate > params.MaxRequestRate):
		return outOfRange("RequestRate", c.RequestRate, params.MinRequestRate, params.MaxRequestRate, " requests per second, or 0 for unlimited")
	}
	return nil
}

// Validate checks the config and returns an error wrapping ErrInvalidConfig
// that names the offending setting.
func (c Config) Validate() error {
	switch {
	case c.ServiceName == "":
		return fmt.Errorf("%w: service name is empty", ErrInvalidConfig)
	case strings.Contains(c.ServiceName, ":"):
		return fmt.Errorf("%w: service name %q contains ':'", ErrInvalidConfig, c.ServiceName)
	case c.ServiceName == params.LegacyServiceName:
		return fmt.Errorf("%w: service name %q is reserved for legacy clients", ErrInvalidConfig, c.ServiceName)
	}
	if err := c.checkSizes(); err != nil {
		return err
	}
	switch {
	case c.MinCap == 0:
		return fmt.Errorf("%w: mincap must be at least 1", ErrInvalidConfig)
	case c.MinCap > math.MaxUint64/c.MaxClients/params.DefaultCapacityPerClient:
		return fmt.Errorf("%w: mincap %d is too large", ErrInvalidConfig, c.MinCap)
	case c.Capacity != 0 && c.Capacity < c.MinCap:
		return fmt.Errorf("%w: capacity %d is below mincap %d: no client could ever be active", ErrInvalidConfig, c.Capacity, c.MinCap)
	case c.ConnectedBias < 0:
		return fmt.Errorf("%w: bias %v is negative", ErrInvalidConfig, c.ConnectedBias)
	case c.InactiveAllowance < 0:
		return fmt.Errorf("%w: inactive allowance %v is negative", ErrInvalidConfig, c.InactiveAllowance)
	case c.PosExpiration < 0:
		return fmt.Errorf("%w: positive expiration %v is negative", ErrInvalidConfig, c.PosExpiration)
	case c.NegExpiration < 0:
		return fmt.Errorf("%w: negative expiration %v is negative", ErrInvalidConfig, c.NegExpiration)
	case c.PosExpiration > 0 && c.PosExpiration < time.Second, c.NegExpiration > 0 && c.NegExpiration < time.Second:
		return fmt.Errorf("%w: an expiration time below 1s would be rounded to 0 (never); use 0 for never", ErrInvalidConfig)
	}
	seen := make(map[string]bool)
	for _, name := range c.Govern {
		switch {
		case name == "":
			return fmt.Errorf("%w: govern: empty protocol name", ErrInvalidConfig)
		case name == params.ProtocolName:
			return fmt.Errorf("%w: govern: %q is vflux's own protocol, always governed", ErrInvalidConfig, name)
		case seen[name]:
			return fmt.Errorf("%w: govern: protocol %q is listed twice", ErrInvalidConfig, name)
		}
		seen[name] = true
	}
	costSeen := make(map[MessageCost]bool)
	for _, mc := range c.GovernCosts {
		key := MessageCost{Protocol: mc.Protocol, Code: mc.Code}
		switch {
		case !seen[mc.Protocol]:
			return fmt.Errorf("%w: govern cost for protocol %q, which is not governed", ErrInvalidConfig, mc.Protocol)
		case costSeen[key]:
			return fmt.Errorf("%w: govern cost for %s code %d is given twice", ErrInvalidConfig, mc.Protocol, mc.Code)
		}
		costSeen[key] = true
	}
	if err := c.PosPrices.validate("positive"); err != nil {
		return err
	}
	return c.NegPrices.validate("negative")
}

// ConfigureP2P adapts the node's p2p config to a serving node (SPEC 6 item 5):
// it does not dial (clients come to it), and unless the operator chose MaxPeers
// (maxPeersGiven) it admits exactly MaxClients active plus the inactive slots.
// A node that does not serve is left unchanged.
func ConfigureP2P(p *p2p.Config, c Config, maxPeersGiven bool) {
	if !c.Serve {
		return
	}
	p.NoDial = true
	if !maxPeersGiven {
		p.MaxPeers = int(c.MaxClients + c.InactiveSlots())
	}
}

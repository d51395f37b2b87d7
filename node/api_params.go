package node

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/client"
)

// ErrInvalidArgument is wrapped by every RPC argument validation error.
var ErrInvalidArgument = errors.New("invalid argument")

// maxIDsPerCall bounds the node IDs one clientInfo or setClientParams call may
// name, so a single call cannot stall the pool.
const maxIDsPerCall = 1000

// Parameter keys of setClientParams and setDefaultParams, as go-ethereum's
// former les API named them. Prices are in edge units (per second).
const (
	keyTimeFactor        = "pricing/timeFactor"
	keyCapacityFactor    = "pricing/capacityFactor"
	keyRequestFactor     = "pricing/requestCostFactor"
	keyNegTimeFactor     = "pricing/negative/timeFactor"
	keyNegCapacityFactor = "pricing/negative/capacityFactor"
	keyNegRequestFactor  = "pricing/negative/requestCostFactor"
	keyCapacity          = "capacity"
)

var priceKeys = []string{keyTimeFactor, keyCapacityFactor, keyRequestFactor, keyNegTimeFactor, keyNegCapacityFactor, keyNegRequestFactor}

// ParseNodeID accepts a node ID as 64 hex digits (with or without 0x), an
// enode URL or an ENR.
func ParseNodeID(s string) (enode.ID, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "enode://") || strings.HasPrefix(s, "enr:") {
		n, err := client.ParseNodeURL(s)
		if err != nil {
			return enode.ID{}, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
		return n.ID(), nil
	}
	id, err := enode.ParseID(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil {
		return enode.ID{}, fmt.Errorf("%w: node ID %q is neither 64 hex digits nor an enode URL or ENR", ErrInvalidArgument, abbreviate(s))
	}
	return id, nil
}

func parseNodeIDs(ids []string) ([]enode.ID, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no node IDs given", ErrInvalidArgument)
	}
	if len(ids) > maxIDsPerCall {
		return nil, fmt.Errorf("%w: %d node IDs in one call, at most %d", ErrInvalidArgument, len(ids), maxIDsPerCall)
	}
	out := make([]enode.ID, len(ids))
	for i, s := range ids {
		id, err := ParseNodeID(s)
		if err != nil {
			return nil, err
		}
		out[i] = id
	}
	return out, nil
}

// checkLimits checks the limits of setLimits (and saved ones at start).
func checkLimits(count, capacity, minCap uint64) error {
	switch {
	case count == 0 || count > maxSaneClients:
		return fmt.Errorf("%w: count must be 1 to %d, got %d", ErrInvalidArgument, maxSaneClients, count)
	case capacity < minCap:
		return fmt.Errorf("%w: capacity %d is below minCap %d", ErrInvalidArgument, capacity, minCap)
	}
	return nil
}

func abbreviate(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// paramUpdate is a validated set of changes from a params map; nil fields are
// left unchanged.
type paramUpdate struct {
	pos, neg [3]*float64 // time, capacity, request
	capacity *uint64
}

// parseParams validates an RPC params map. Unknown keys, non-numbers,
// negative or non-finite prices and non-integer capacities are errors; a
// capacity is only accepted where allowCapacity is set (per-client params).
func parseParams(m map[string]interface{}, allowCapacity bool) (paramUpdate, error) {
	var u paramUpdate
	if len(m) == 0 {
		return u, fmt.Errorf("%w: no parameters given", ErrInvalidArgument)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same error for the same input
	for _, k := range keys {
		v, ok := m[k].(float64)
		if !ok {
			return u, fmt.Errorf("%w: parameter %q must be a number, got %T", ErrInvalidArgument, k, m[k])
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return u, fmt.Errorf("%w: parameter %q is not a finite number", ErrInvalidArgument, k)
		}
		if v < 0 {
			return u, fmt.Errorf("%w: parameter %q is negative (%v); prices and capacities must be >= 0", ErrInvalidArgument, k, v)
		}
		val := v
		switch k {
		case keyTimeFactor:
			u.pos[0] = &val
		case keyCapacityFactor:
			u.pos[1] = &val
		case keyRequestFactor:
			u.pos[2] = &val
		case keyNegTimeFactor:
			u.neg[0] = &val
		case keyNegCapacityFactor:
			u.neg[1] = &val
		case keyNegRequestFactor:
			u.neg[2] = &val
		case keyCapacity:
			if !allowCapacity {
				return u, fmt.Errorf("%w: %q is a per-client parameter; use setClientParams", ErrInvalidArgument, k)
			}
			if v != math.Trunc(v) || v >= 1<<63 {
				return u, fmt.Errorf("%w: capacity %v must be a whole number below 2^63", ErrInvalidArgument, v)
			}
			c := uint64(v)
			u.capacity = &c
		default:
			valid := append([]string(nil), priceKeys...)
			if allowCapacity {
				valid = append(valid, keyCapacity)
			}
			return u, fmt.Errorf("%w: unknown parameter %q (valid: %s)", ErrInvalidArgument, k, strings.Join(valid, ", "))
		}
	}
	return u, nil
}

func (u paramUpdate) hasPrices() bool {
	for i := range u.pos {
		if u.pos[i] != nil || u.neg[i] != nil {
			return true
		}
	}
	return false
}

// apply returns pos and neg with the update's prices set.
func (u paramUpdate) apply(pos, neg Prices) (Prices, Prices) {
	set := func(p *Prices, f [3]*float64) {
		if f[0] != nil {
			p.Time = *f[0]
		}
		if f[1] != nil {
			p.Capacity = *f[1]
		}
		if f[2] != nil {
			p.Request = *f[2]
		}
	}
	set(&pos, u.pos)
	set(&neg, u.neg)
	return pos, neg
}

// pricesParams renders prices under the parameter keys.
func pricesParams(pos, neg Prices) map[string]interface{} {
	return map[string]interface{}{
		keyTimeFactor:        pos.Time,
		keyCapacityFactor:    pos.Capacity,
		keyRequestFactor:     pos.Request,
		keyNegTimeFactor:     neg.Time,
		keyNegCapacityFactor: neg.Capacity,
		keyNegRequestFactor:  neg.Request,
	}
}

package node

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
)

// ErrNotServing is returned by API calls after the service stopped.
var ErrNotServing = errors.New("vflux service is stopped")

// API is the "vflux" RPC namespace (SPEC 6). It is an admin API: IPC always
// serves it, HTTP and WebSocket only when the operator lists "vflux".
// Arguments are validated before anything changes; bad ones are JSON-RPC
// errors that say what is wrong.
type API struct {
	s *Service
}

// ServerInfo is the answer of vflux_serverInfo.
type ServerInfo struct {
	ServiceName       string                 `json:"serviceName"`
	MinCap            uint64                 `json:"minCap"`
	MaxCount          uint64                 `json:"maxCount"`
	MaxCap            uint64                 `json:"maxCap"`
	ActiveCount       uint64                 `json:"activeCount"`
	ActiveCap         uint64                 `json:"activeCap"`
	InactiveCount     int                    `json:"inactiveCount"`
	ConnectedCount    int                    `json:"connectedCount"`
	TotalTokens       uint64                 `json:"totalTokens"`
	ConnectedBias     float64                `json:"connectedBias"`     // seconds
	PosExpirationTC   uint64                 `json:"posExpirationTC"`   // seconds, 0 = never
	NegExpirationTC   uint64                 `json:"negExpirationTC"`   // seconds, 0 = never
	InactiveAllowance float64                `json:"inactiveAllowance"` // seconds
	DefaultParams     map[string]interface{} `json:"defaultParams"`
}

// ClientInfo is what vflux_clientInfo reports per client. Balances are in
// tokens. Prices, capacity and the negative balance (it is keyed by the
// client's address, see vflux.FreeClientID) are only known while the client
// is connected; for others NegBalance is 0.
type ClientInfo struct {
	Connected      bool                   `json:"isConnected"`
	Capacity       uint64                 `json:"capacity"`
	ConnectionTime float64                `json:"connectionTime"` // seconds
	PosBalance     uint64                 `json:"pricing/balance"`
	NegBalance     uint64                 `json:"pricing/negBalance"`
	Params         map[string]interface{} `json:"params,omitempty"`
	// Protocols are the protocols the connected client runs ("vfx/1",
	// governed ones such as "eth/69"), sorted (SPEC 11).
	Protocols []string `json:"protocols,omitempty"`
}

// Event is a pool event as vflux_subscribe("events") sends it.
type Event struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Capacity uint64 `json:"capacity"`
	Time     int64  `json:"time"` // pool clock, nanoseconds
	// Protocols are the protocols the client runs when the event is sent
	// (empty once it left), see ClientInfo.
	Protocols []string `json:"protocols,omitempty"`
}

var eventNames = map[clientpool.EventType]string{
	clientpool.EventConnected:        "connected",
	clientpool.EventActivated:        "activated",
	clientpool.EventCapacityChanged:  "capacityChanged",
	clientpool.EventDeactivated:      "deactivated",
	clientpool.EventDisconnected:     "disconnected",
	clientpool.EventBalanceExhausted: "balanceExhausted",
}

func (a *API) checkRunning() error {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if a.s.stopped {
		return ErrNotServing
	}
	return nil
}

// ServerInfo returns the limits, load, token total and default prices.
func (a *API) ServerInfo() (*ServerInfo, error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrNotServing
	}
	maxCount, maxCap := s.pool.Limits()
	count, capacity := s.pool.Active()
	posTC, negTC := s.pool.GetExpirationTCs()
	return &ServerInfo{
		ServiceName:       s.cfg.ServiceName,
		MinCap:            s.cfg.MinCap,
		MaxCount:          maxCount,
		MaxCap:            maxCap,
		ActiveCount:       count,
		ActiveCap:         capacity,
		InactiveCount:     s.pool.Inactive(),
		ConnectedCount:    s.clients.count(),
		TotalTokens:       s.pool.TotalTokenAmount(),
		ConnectedBias:     s.bias.Seconds(),
		PosExpirationTC:   posTC,
		NegExpirationTC:   negTC,
		InactiveAllowance: s.cfg.InactiveAllowance.Seconds(),
		DefaultParams:     pricesParams(s.posPrices, s.negPrices),
	}, nil
}

// ClientInfo reports the given clients (hex node IDs, enode URLs or ENRs),
// keyed by hex node ID.
func (a *API) ClientInfo(ids []string) (map[string]ClientInfo, error) {
	nodeIDs, err := parseNodeIDs(ids)
	if err != nil {
		return nil, err
	}
	return a.clientInfos(nodeIDs)
}

// PriorityClientInfo reports up to maxCount clients with a stored positive
// balance whose IDs are in [start, stop), ascending; an empty stop (or the
// zero ID) means "to the end", an empty start means from the beginning.
func (a *API) PriorityClientInfo(start, stop string, maxCount int) (map[string]ClientInfo, error) {
	var startID, stopID enode.ID
	var err error
	if start != "" {
		if startID, err = ParseNodeID(start); err != nil {
			return nil, fmt.Errorf("start: %w", err)
		}
	}
	if stop != "" {
		if stopID, err = ParseNodeID(stop); err != nil {
			return nil, fmt.Errorf("stop: %w", err)
		}
	}
	if maxCount <= 0 || maxCount > maxIDsPerCall {
		return nil, fmt.Errorf("%w: max must be 1 to %d, got %d", ErrInvalidArgument, maxIDsPerCall, maxCount)
	}
	if err := a.checkRunning(); err != nil {
		return nil, err
	}
	return a.clientInfos(a.s.pool.GetPosBalanceIDs(startID, stopID, maxCount))
}

// ConnectedClientInfo reports up to maxCount connected clients, in node ID
// order (an extension of the former les API, for the command line's
// "clients").
func (a *API) ConnectedClientInfo(maxCount int) (map[string]ClientInfo, error) {
	if maxCount <= 0 || maxCount > maxIDsPerCall {
		return nil, fmt.Errorf("%w: max must be 1 to %d, got %d", ErrInvalidArgument, maxIDsPerCall, maxCount)
	}
	if err := a.checkRunning(); err != nil {
		return nil, err
	}
	var ids []enode.ID
	for _, c := range a.s.clients.snapshot() {
		if len(ids) == maxCount {
			break
		}
		ids = append(ids, c.node.ID())
	}
	return a.clientInfos(ids)
}

func (a *API) clientInfos(ids []enode.ID) (map[string]ClientInfo, error) {
	if err := a.checkRunning(); err != nil {
		return nil, err
	}
	out := make(map[string]ClientInfo, len(ids))
	clock := a.s.clients.clock
	for _, id := range ids {
		var info ClientInfo
		if c, ok := a.s.clients.get(id); ok {
			info.Connected = true
			info.Capacity = c.capacity
			info.ConnectionTime = time.Duration(clock.Now() - c.connected).Seconds()
			info.PosBalance, info.NegBalance = c.balance.GetBalance()
			pos, neg := c.balance.GetPriceFactors()
			info.Params = pricesParams(PricesFromPool(pos), PricesFromPool(neg))
			info.Protocols = c.protocols
		} else {
			a.s.pool.BalanceOperation(id, "", func(op clientpool.AtomicBalanceOperator) {
				info.PosBalance, info.NegBalance = op.GetBalance()
			})
		}
		out[id.String()] = info
	}
	return out, nil
}

// AddBalance adds amount (negative to take tokens away) to a client's
// positive balance and returns [old, new]. The change is on disk when the
// call returns.
func (a *API) AddBalance(id string, amount *big.Int) ([2]uint64, error) {
	nodeID, err := ParseNodeID(id)
	if err != nil {
		return [2]uint64{}, err
	}
	amt, err := parseAmount(amount)
	if err != nil {
		return [2]uint64{}, err
	}
	if err := a.checkRunning(); err != nil {
		return [2]uint64{}, err
	}
	freeID := ""
	if c, ok := a.s.clients.get(nodeID); ok {
		freeID = c.freeID
	}
	oldBal, newBal, err := a.s.pool.AddBalance(nodeID, freeID, amt)
	switch {
	case errors.Is(err, clientpool.ErrStopped):
		return [2]uint64{}, ErrNotServing
	case err != nil: // including a failed database write: the top-up did not happen
		return [2]uint64{}, fmt.Errorf("add %d tokens to %s: %w", amt, nodeID.TerminalString(), err)
	}
	return [2]uint64{oldBal, newBal}, nil
}

// SetClientParams changes the prices and/or capacity of connected clients.
// Every ID and parameter is checked before anything changes. A capacity the
// pool can only grant in part is applied and reported as an error naming the
// granted value.
func (a *API) SetClientParams(ids []string, p map[string]interface{}) error {
	nodeIDs, err := parseNodeIDs(ids)
	if err != nil {
		return err
	}
	u, err := parseParams(p, true)
	if err != nil {
		return err
	}
	if u.capacity != nil && *u.capacity < a.s.cfg.MinCap {
		return fmt.Errorf("%w: capacity %d is below minCap %d", ErrInvalidArgument, *u.capacity, a.s.cfg.MinCap)
	}
	if err := a.checkRunning(); err != nil {
		return err
	}
	clients := make([]connectedClient, len(nodeIDs))
	for i, id := range nodeIDs {
		c, ok := a.s.clients.get(id)
		if !ok {
			return fmt.Errorf("%w: client %s is not connected; parameters apply to connected clients only", clientpool.ErrNotConnected, id)
		}
		clients[i] = c
	}
	for _, c := range clients {
		if u.hasPrices() {
			pos, neg := c.balance.GetPriceFactors()
			newPos, newNeg := u.apply(PricesFromPool(pos), PricesFromPool(neg))
			c.balance.SetPriceFactors(newPos.PoolFactors(), newNeg.PoolFactors())
		}
		if u.capacity != nil {
			granted, err := a.s.pool.SetCapacity(c.node, *u.capacity, 0, false)
			if err != nil {
				return fmt.Errorf("set capacity of %s: %w", c.node.ID(), err)
			}
			if granted != *u.capacity {
				return fmt.Errorf("client %s: capacity %d requested, %d granted (not enough priority to take more)", c.node.ID(), *u.capacity, granted)
			}
		}
	}
	return nil
}

// SetDefaultParams changes the prices that clients connecting from now on get.
func (a *API) SetDefaultParams(p map[string]interface{}) error {
	u, err := parseParams(p, false)
	if err != nil {
		return err
	}
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrNotServing
	}
	s.posPrices, s.negPrices = u.apply(s.posPrices, s.negPrices)
	s.pool.SetDefaultFactors(s.posPrices.PoolFactors(), s.negPrices.PoolFactors())
	return nil
}

// SetConnectedBias sets how long (seconds) incumbents are protected.
func (a *API) SetConnectedBias(seconds uint64) error {
	if seconds > uint64(params.MaxConnectedBias/time.Second) {
		return fmt.Errorf("%w: bias %d s is over the limit of %d s", ErrInvalidArgument, seconds, uint64(params.MaxConnectedBias/time.Second))
	}
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrNotServing
	}
	s.bias = time.Duration(seconds) * time.Second
	s.pool.SetConnectedBias(s.bias)
	return nil
}

// SetLimits changes the most active clients and their total capacity. The
// node's p2p peer slots stay as sized at start.
func (a *API) SetLimits(count, capacity uint64) error {
	switch {
	case count == 0 || count > maxSaneClients:
		return fmt.Errorf("%w: count must be 1 to %d, got %d", ErrInvalidArgument, maxSaneClients, count)
	case capacity < a.s.cfg.MinCap:
		return fmt.Errorf("%w: capacity %d is below minCap %d", ErrInvalidArgument, capacity, a.s.cfg.MinCap)
	}
	if err := a.checkRunning(); err != nil {
		return err
	}
	a.s.pool.SetLimits(count, capacity)
	return nil
}

// Events streams pool events: vflux_subscribe("events").
func (a *API) Events(ctx context.Context) (*rpc.Subscription, error) {
	notifier, ok := rpc.NotifierFromContext(ctx)
	if !ok {
		return nil, rpc.ErrNotificationsUnsupported
	}
	if err := a.checkRunning(); err != nil {
		return nil, err
	}
	sub := notifier.CreateSubscription()
	events := make(chan clientpool.Event, eventBuffer)
	poolSub := a.s.pool.SubscribeEvents(events)
	go func() {
		defer poolSub.Unsubscribe()
		for {
			select {
			case ev := <-events:
				e := eventJSON(ev)
				e.Protocols = a.s.clients.protocolsOf(ev.ID)
				notifier.Notify(sub.ID, e)
			case <-sub.Err():
				return
			case <-poolSub.Err():
				return
			}
		}
	}()
	return sub, nil
}

func eventJSON(ev clientpool.Event) Event {
	name, ok := eventNames[ev.Type]
	if !ok {
		name = fmt.Sprintf("unknown(%d)", ev.Type)
	}
	return Event{Type: name, ID: ev.ID.String(), Capacity: ev.Capacity, Time: int64(ev.Time)}
}

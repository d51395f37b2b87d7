package node

import (
	"context"
	"errors"
	"fmt"
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
	MaxInactive       int                    `json:"maxInactive"` // most clients kept waiting without capacity
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
	// Time is the wall clock when the pool decided, RFC 3339 in UTC with
	// nanoseconds.
	Time string `json:"time"`
	// Reason says why, on deactivated and disconnected (clientpool.Reason).
	Reason string `json:"reason,omitempty"`
	// Balance is [old, new] positive balance, on balanceChanged (as
	// vflux_addBalance answers).
	Balance *[2]uint64 `json:"balance,omitempty"`
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
	clientpool.EventBalanceChanged:   "balanceChanged",
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
	pos, neg := s.pool.DefaultFactors()
	return &ServerInfo{
		ServiceName:       s.cfg.ServiceName,
		MinCap:            s.cfg.MinCap,
		MaxCount:          maxCount,
		MaxCap:            maxCap,
		ActiveCount:       count,
		ActiveCap:         capacity,
		InactiveCount:     s.pool.Inactive(),
		MaxInactive:       s.cfg.PoolMaxInactive(),
		ConnectedCount:    s.pool.Connected(),
		TotalTokens:       s.pool.TotalTokenAmount(),
		ConnectedBias:     s.pool.ConnectedBias().Seconds(),
		PosExpirationTC:   posTC,
		NegExpirationTC:   negTC,
		InactiveAllowance: s.cfg.InactiveAllowance.Seconds(),
		DefaultParams:     pricesParams(PricesFromPool(pos), PricesFromPool(neg)),
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
	states := a.s.pool.ConnectedClients(maxCount)
	out := make(map[string]ClientInfo, len(states))
	for _, st := range states {
		out[st.ID().String()] = a.connectedInfo(st)
	}
	return out, nil
}

// connectedInfo is what vflux_clientInfo reports of a connected client: the
// pool's state of it, and the protocols its connection runs.
func (a *API) connectedInfo(st clientpool.ClientState) ClientInfo {
	return ClientInfo{
		Connected:      true,
		Capacity:       st.Capacity,
		ConnectionTime: st.Connected.Seconds(),
		PosBalance:     st.PosBalance,
		NegBalance:     st.NegBalance,
		Params:         pricesParams(PricesFromPool(st.PosFactors), PricesFromPool(st.NegFactors)),
		Protocols:      a.s.clients.protocolsOf(st.ID()),
	}
}

func (a *API) clientInfos(ids []enode.ID) (map[string]ClientInfo, error) {
	if err := a.checkRunning(); err != nil {
		return nil, err
	}
	out := make(map[string]ClientInfo, len(ids))
	for _, id := range ids {
		var info ClientInfo
		if st, ok := a.s.pool.ClientInfo(id); ok {
			info = a.connectedInfo(st)
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
// positive balance and returns [old, new]. The amount is a JSON number or a
// string ParseTokenAmount takes. Taking away more than the balance holds is
// ErrBalanceTooLow unless opts asks to clamp (then the balance ends at 0).
// The change is on disk when the call returns.
func (a *API) AddBalance(id string, amount Amount, opts *AddBalanceOptions) ([2]uint64, error) {
	nodeID, err := ParseNodeID(id)
	if err != nil {
		return [2]uint64{}, err
	}
	amt, err := ParseBalanceChange(string(amount))
	if err != nil {
		return [2]uint64{}, err
	}
	clamp := opts != nil && opts.Clamp
	if err := a.checkRunning(); err != nil {
		return [2]uint64{}, err
	}
	freeID := ""
	if st, ok := a.s.pool.ClientInfo(nodeID); ok {
		freeID = st.FreeID
	}
	// The check and the change are one balance operation, so spending in
	// between cannot turn a refused removal into a clamped one.
	var oldBal, newBal uint64
	ran := false
	a.s.pool.BalanceOperation(nodeID, freeID, func(op clientpool.AtomicBalanceOperator) {
		ran = true
		oldBal, _ = op.GetBalance()
		if amt < 0 && !clamp && uint64(-(amt+1)) >= oldBal { // -amt > oldBal, without overflow
			err = fmt.Errorf("%w: cannot take %d tokens from %s, its balance holds %d (ask to clamp to empty it: RPC option {\"clamp\": true}, command line --clamp)",
				ErrBalanceTooLow, -amt, nodeID.TerminalString(), oldBal)
			newBal = oldBal
			return
		}
		oldBal, newBal, err = op.AddBalance(amt)
	})
	if !ran {
		// The pool ran nothing: it stopped, or a stored balance cannot be
		// read. BalanceOperation does not say which; a no-op AddBalance
		// (which does) asks again.
		_, _, err = a.s.pool.AddBalance(nodeID, freeID, 0)
		if err == nil {
			err = errors.New("a stored balance could not be read a moment ago (see the node's log); nothing changed, try again")
		}
	}
	switch {
	case errors.Is(err, clientpool.ErrStopped):
		return [2]uint64{}, ErrNotServing
	case errors.Is(err, ErrBalanceTooLow):
		return [2]uint64{}, err
	case err != nil: // including a failed database write: the top-up did not happen
		return [2]uint64{}, fmt.Errorf("add %d tokens to %s: %w", amt, nodeID.TerminalString(), err)
	}
	countTopUp(oldBal, newBal) // logged from the pool's balanceChanged event
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
	for _, id := range nodeIDs {
		if _, ok := a.s.pool.ClientInfo(id); !ok {
			return notConnected(id)
		}
	}
	for _, id := range nodeIDs {
		st, ok := a.s.pool.ClientInfo(id) // the prices of the moment, to change only those given
		if !ok {
			return notConnected(id) // it left since the check
		}
		if u.hasPrices() {
			pos, neg := u.apply(PricesFromPool(st.PosFactors), PricesFromPool(st.NegFactors))
			if err := a.s.pool.SetClientFactors(id, pos.PoolFactors(), neg.PoolFactors()); err != nil {
				return fmt.Errorf("set prices of %s: %w", id, err)
			}
		}
		if u.capacity != nil {
			granted, err := a.s.pool.SetCapacity(st.Node, *u.capacity, 0, false)
			if err != nil {
				return fmt.Errorf("set capacity of %s: %w", id, err)
			}
			if granted != *u.capacity {
				return fmt.Errorf("client %s: capacity %d requested, %d granted (not enough priority to take more)", id, *u.capacity, granted)
			}
		}
	}
	return nil
}

// notConnected is SetClientParams' error for a client that is not connected.
func notConnected(id enode.ID) error {
	return fmt.Errorf("%w: client %s is not connected; parameters apply to connected clients only", clientpool.ErrNotConnected, id)
}

// The setters below change a pool setting and save it in the pool's store
// before it takes effect (doc.go, "Settings changed over RPC"): a failed write
// is returned and leaves the previous value in effect. They hold the service
// lock (whileServing), so Stop cannot close the database under a write.

// whileServing runs fn with the service lock held, or returns ErrNotServing
// once the service has stopped.
func (s *Service) whileServing(fn func(*Service) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrNotServing
	}
	return fn(s)
}

// SetDefaultParams changes the prices that clients connecting from now on get.
func (a *API) SetDefaultParams(p map[string]interface{}) error {
	u, err := parseParams(p, false)
	if err != nil {
		return err
	}
	return a.s.whileServing(func(s *Service) error {
		oldPosF, oldNegF := s.pool.DefaultFactors()
		oldPos, oldNeg := PricesFromPool(oldPosF), PricesFromPool(oldNegF)
		pos, neg := u.apply(oldPos, oldNeg)
		if err := s.pool.SaveDefaultFactors(pos.PoolFactors(), neg.PoolFactors()); err != nil {
			return settingNotChanged("default prices", err)
		}
		logPricesChange(s.log, oldPos, oldNeg, pos, neg)
		return nil
	})
}

// SetConnectedBias sets how long (seconds) incumbents are protected.
func (a *API) SetConnectedBias(seconds uint64) error {
	if seconds > uint64(params.MaxConnectedBias/time.Second) {
		return fmt.Errorf("%w: bias %d s is over the limit of %d s", ErrInvalidArgument, seconds, uint64(params.MaxConnectedBias/time.Second))
	}
	return a.s.whileServing(func(s *Service) error {
		old, bias := s.pool.ConnectedBias(), time.Duration(seconds)*time.Second
		if err := s.pool.SaveConnectedBias(bias); err != nil {
			return settingNotChanged("connected bias", err)
		}
		logBiasChange(s.log, old, bias)
		return nil
	})
}

// SetLimits changes the most active clients and their total capacity. The
// node's p2p peer slots stay as sized at start.
func (a *API) SetLimits(count, capacity uint64) error {
	if err := checkLimits(count, capacity, a.s.cfg.MinCap); err != nil {
		return err
	}
	return a.s.whileServing(func(s *Service) error {
		oldCount, oldCap := s.pool.Limits()
		if err := s.pool.SaveLimits(count, capacity); err != nil {
			return settingNotChanged("limits", err)
		}
		logLimitsChange(s.log, oldCount, oldCap, count, capacity)
		return nil
	})
}

// settingNotChanged is the error of a setter whose save failed.
func settingNotChanged(what string, err error) error {
	if errors.Is(err, clientpool.ErrStopped) {
		return ErrNotServing
	}
	return fmt.Errorf("%s not changed: %w", what, err)
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

// eventJSON is ev as vflux_subscribe("events") sends it.
func eventJSON(ev clientpool.Event) Event {
	name, ok := eventNames[ev.Type]
	if !ok {
		name = fmt.Sprintf("unknown(%d)", ev.Type)
	}
	out := Event{Type: name, ID: ev.ID.String(), Capacity: ev.Capacity, Time: ev.Wall.UTC().Format(time.RFC3339Nano), Reason: string(ev.Reason)}
	if ev.Type == clientpool.EventBalanceChanged {
		out.Balance = &[2]uint64{ev.OldBalance, ev.NewBalance}
	}
	return out
}

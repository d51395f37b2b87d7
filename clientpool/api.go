package clientpool

import (
	"errors"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Peer is a connected client as the pool sees it. Its callbacks are never
// invoked with a pool lock held, and they may call back into the pool.
type Peer interface {
	// Node is the client's node record; its ID keys the positive balance.
	Node() *enode.Node
	// FreeClientID keys the negative balance (see vflux.FreeClientID); "" means
	// the client has no negative balance.
	FreeClientID() string
	// InactiveAllowance is how long a free client may wait inactive before it is
	// disconnected; 0 disconnects it at once.
	InactiveAllowance() time.Duration
	// UpdateCapacity reports a capacity change to the client. It must not block
	// and must not call into the pool (a call that changes this client's
	// capacity would wait for this delivery to end, so it would deadlock).
	UpdateCapacity(newCap uint64, requested bool)
	// Disconnect asks the transport to drop the client; it must lead to
	// Unregister eventually.
	Disconnect()
}

// PriceFactors are the prices of service, in internal units: TimeFactor in
// tokens per nanosecond connected (active), CapacityFactor in tokens per
// nanosecond per 1,000,000 units of capacity, RequestFactor in tokens per unit
// of request cost.
type PriceFactors struct {
	TimeFactor, CapacityFactor, RequestFactor float64
}

// ReadOnlyBalance reads a client's balances.
type ReadOnlyBalance interface {
	// GetBalance returns the current positive and negative balance.
	GetBalance() (pos, neg uint64)
	// GetRawBalance returns the balances as expiring values.
	GetRawBalance() (pos, neg ExpiredValue)
	// GetPriceFactors returns the factors used to spend the positive and to
	// accrue the negative balance.
	GetPriceFactors() (pos, neg PriceFactors)
}

// ConnectedBalance is the balance of a registered client.
type ConnectedBalance interface {
	ReadOnlyBalance
	// SetPriceFactors changes the client's price factors from now on.
	SetPriceFactors(pos, neg PriceFactors)
	// RequestServed charges a served request of the given cost and returns the
	// new positive balance.
	RequestServed(cost uint64) uint64
}

// AtomicBalanceOperator changes balances inside BalanceOperation; every change
// is persisted before the method making it returns.
type AtomicBalanceOperator interface {
	ReadOnlyBalance
	// AddBalance adds amount (which may be negative) to the positive balance. It
	// returns an error and changes nothing if the result would exceed MaxInt64
	// or the database write fails.
	AddBalance(amount int64) (old, new uint64, err error)
	// SetBalance sets both balances; values over MaxInt64 and a failed
	// database write are an error and change nothing.
	SetBalance(pos, neg uint64) error
}

// Errors returned by the pool.
var (
	// ErrNotConnected: the node is not registered.
	ErrNotConnected = errors.New("client not connected")
	// ErrNoPriority: a capacity above minCap needs a positive balance.
	ErrNoPriority = errors.New("priority client status required")
	// ErrCantFindMaximum is kept for familiarity with go-ethereum's former API;
	// it is never returned: SetCapacity grants partially instead.
	ErrCantFindMaximum = errors.New("unable to find maximum allowed capacity")
	// ErrBalanceOverflow: AddBalance or SetBalance would exceed MaxInt64 tokens.
	ErrBalanceOverflow = errors.New("balance over MaxInt64")
	// ErrNoFreeID: a non-zero negative balance needs a free-client ID.
	ErrNoFreeID = errors.New("negative balance needs a free-client ID")
	// ErrStopped: the pool was stopped.
	ErrStopped = errors.New("client pool stopped")
)

// errBalanceOverflow is wrapped with context by the balance operator.
var errBalanceOverflow = ErrBalanceOverflow

// EventType says what happened to a client.
type EventType int

// Pool event types.
const (
	EventConnected        EventType = iota // registered
	EventActivated                         // got capacity
	EventCapacityChanged                   // capacity changed while active
	EventDeactivated                       // lost its capacity: waits inactive, or is leaving
	EventDisconnected                      // told to disconnect, unregistered, or refused at Register
	EventBalanceExhausted                  // positive balance ran out while connected
	EventBalanceChanged                    // positive balance changed by AddBalance or SetBalance
)

// Reason says why a client lost its capacity (EventDeactivated) or its
// connection (EventDisconnected); other events carry none (""). The pool sets
// it where it decides; on the wire a client the pool drops still gets the
// transport's usual DiscTooManyPeers whatever the reason.
type Reason string

// The reasons, each with the events it is given on.
const (
	// ReasonEvicted: deactivated so that a client of higher priority (a
	// waiting one, or an active one raising its capacity) gets the capacity.
	ReasonEvicted Reason = "evicted by priority"
	// ReasonBalanceRanOut: deactivated as ReasonEvicted, but it had priority
	// when it was activated and its positive balance ran out since (and was
	// not topped up again).
	ReasonBalanceRanOut Reason = "balance ran out"
	// ReasonLimitsLowered: deactivated because SetLimits lowered the limits
	// below what the active clients held.
	ReasonLimitsLowered Reason = "limits lowered"
	// ReasonAllowanceEnded: disconnected after waiting its inactive
	// allowance without capacity (at once with a zero allowance).
	ReasonAllowanceEnded Reason = "inactive allowance ended"
	// ReasonWaitingFull: disconnected because the inactive set was over
	// SetMaxInactive's bound and it ranked lowest of the waiting clients.
	ReasonWaitingFull Reason = "waiting slots full"
	// ReasonTooManyFromAddress: refused at Register because its free-client
	// ID (address) already had SetMaxPerFreeID clients. The refused peer gets
	// only EventDisconnected, no EventConnected.
	ReasonTooManyFromAddress Reason = "too many clients from one address"
	// ReasonPeerLeft: the transport unregistered the client (the peer
	// disconnected, or the server closed it); an active client is deactivated
	// with it first.
	ReasonPeerLeft Reason = "peer left"
)

// Event is one change of a client's state, delivered to SubscribeEvents.
// Time is the pool's clock (monotonic, or simulated in tests); Wall is the
// wall clock when the pool decided the change. An active client that leaves
// gets EventDeactivated before EventDisconnected.
type Event struct {
	Type     EventType
	ID       enode.ID
	Capacity uint64
	Time     mclock.AbsTime

	Wall   time.Time // wall-clock time of the decision
	Reason Reason    // EventDeactivated and EventDisconnected only
	// OldBalance and NewBalance are the positive balance before and after an
	// EventBalanceChanged.
	OldBalance, NewBalance uint64
}

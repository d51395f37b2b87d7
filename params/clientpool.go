package params

import "time"

// Client pool internals (package clientpool). Operators do not tune these; they
// are here so a reviewer finds every number of the pool in one place.
const (
	// PriorityHorizon is how long the key of an active client whose priority
	// falls faster than its kind's common drift stays a lower bound of its
	// priority before its timer re-keys it; clients falling at the drift rate
	// or slower, such as free clients at minCap with the default prices, are
	// never re-keyed by time. Longer means fewer timer firings, shorter means
	// the eviction candidate is found with fewer exact comparisons.
	PriorityHorizon = 10 * time.Second
	// MinTimerDelay is the shortest delay a balance threshold timer is armed
	// with, so a client whose threshold is already due cannot spin a timer loop.
	MinTimerDelay = time.Millisecond
	// EventQueueSize bounds the queue of pool events per subscriber; a slower
	// subscriber loses events (counted by ClientPool.DroppedEvents).
	EventQueueSize = 256
	// SetCapacitySearchSteps bounds the enforcement passes a partial capacity
	// grant may take (a bisection between the current and the requested
	// capacity, after a capacity-curve estimate).
	SetCapacitySearchSteps = 8
	// MaxActivationsPerCall bounds the waiting clients one call may activate,
	// a guard against a cycle that the priority order should rule out anyway.
	MaxActivationsPerCall = 1 << 20
	// MaxQueuedBalanceWrites bounds the balance keys waiting for the pool's
	// background database writer. Past it, the pool call that queues more writes
	// them itself (holding the pool lock), so a stalled disk slows the pool down
	// instead of growing the queue: 65,536 keys are about 10 MiB.
	MaxQueuedBalanceWrites = 1 << 16
)

// Package clientpool decides which connected clients of a vflux server are
// served and with what capacity (SPEC sections 2 and 3).
//
// # What it owns
//
//   - Token balances: a positive balance per node ID (bought or granted by the
//     operator) and a negative balance per free-client ID (the cost of free
//     service), both decaying with their own time constants (ExpiredValue and
//     the expiration clocks), persisted in an ethdb.KeyValueStore under the key
//     layout of SPEC 2.5, with the expiration offsets in every write batch.
//   - Pricing: PriceFactors turn connection time, capacity and served requests
//     into spent tokens; priority and its biased estimate turn balances into
//     the rank clients are compared by.
//   - Admission: the active set (clients holding at least minCap) and the
//     inactive set (connected, waiting), under the limits maxCount and maxCap,
//     with the connected bias protecting incumbents. The exact sum of the
//     capacities told to clients never exceeds maxCap (so it cannot wrap, even
//     with maxCap near MaxUint64) and equals Active()'s: the planner compares
//     the others' capacity with what a request leaves of maxCap, never a sum.
//   - The capacity query service ("cq", "bal", "info"), a vflux.Service.
//   - Pool events, delivered to SubscribeEvents subscribers (see Events
//     below).
//
// It knows nothing of RLPx or discv5: transports wrap their peers in the Peer
// interface, call Register/Unregister, SetCapacity and RequestServed, and
// route vflux requests to Handle.
//
// # Data structures
//
//   - clients: map from node ID to *client (balances, state, timers).
//   - negs: the negative balances shared by connected clients with the same
//     free-client ID, reference-counted by their clients list (see Shared
//     negative balances below).
//   - active: an indexed min-heap of active clients ordered by kind (free
//     below priority) and key, a lower bound of the client's priority in
//     base units stored with its kind's drift (see Keys that stay valid while
//     time passes); slots: the same clients ordered by slotKey, the same
//     bound of their priority at minCap (their rank for a slot, see A pool
//     full by count). An active client has a threshold timer only where
//     something happens to it: its positive balance runs out, its shared
//     negative balance reaches its ceiling, or its priority falls faster than
//     its kind's drift (re-keyed once per params.PriorityHorizon); a free
//     client at minCap with the default prices has none. The pool has one activation timer, for the moment the
//     best waiting client may come to out-rank an active one.
//   - inactiveBest / inactiveLow: two indexed heaps over the inactive clients,
//     best first (activation order) and worst first (SetMaxInactive), ordered
//     by an expiration-independent log key of their balances. A waiting free
//     client has an allowance timer (it is disconnected when it fires); a
//     waiting priority client whose balance decays has a decay timer that
//     fires when the balance reads 0, and starts its allowance then. The
//     three per-client timers are clientTimers: an mclock timer and a
//     generation counter, so a firing that raced with a stop is ignored.
//   - The enforcement planner walks the slots and active heaps in order
//     without changing them (a frontier heap over heap indices), so evicting
//     or cutting k clients costs O(k log k) and register/unregister are
//     O(log n). indexedHeap is the one heap type, for the client sets and the
//     frontier.
//   - capacityCurve: a cached simulation of enforcement over a snapshot of the
//     active set (one for a newcomer, which needs a slot, and one for an
//     active asker, which holds one), answered by binary search; rebuilt on
//     the first query after a change that moved 1% of maxCap, or any change
//     once it is 100 ms old.
//   - total: the sum of all positive balances as one ExpiredValue, updated on
//     every balance change, plus the unsettled spending rate of active clients.
//
// # Decisions on the priority of the moment
//
// A key orders a heap lazily; no decision trusts it. The planner's frontier
// is go-ethereum's lazy queue: an entry is ordered by its key (a lower bound
// of its priority at the moment) until it is refreshed to its exact priority
// at the moment and re-sifted, and an entry that is fresh at the top is the
// lowest-ranked client: every other entry's priority is at least its key, and
// every key is at least the top's priority. So enforcement, activation and
// SetCapacity compare exact priorities of the moment: the incumbents' exact
// priorities against the newcomer's or requester's priority after paying for
// the bias (SPEC 3.2), whatever the keys are; a key only decides how many
// clients are refreshed. Keys of clients that spend their balance within the
// horizon all fall to about the same floor: the walk then refreshes all of
// them, and still takes the right one, up to maxPlanRefreshes per walk: past
// that budget a client reached by key is compared at its exact priority but
// taken in key order, so a decision stays O(log n) when the keys of a whole
// pool collapsed (a pool whose clients spend more over the horizon than they
// have). Keys that fall with the drift are tight for most clients (below),
// which leaves the budget for the rest. A newcomer that does not out-rank the
// lowest key left fails at once: every priority is at least that key. The capacity
// curve's snapshot holds exact priorities, so it simulates in exact order from
// the start.
//
// # Keys that stay valid while time passes
//
// Time lowers priorities: a free client's debt grows at its negative price,
// a priority client's pos/cap falls at its price per capacity, and
// expiration scales balances down. Two facts keep the heaps' order still
// while time passes:
//
//   - Base units. A balance read at a fixed reference offset ref (its value
//     times 2^(L(t)-ref), with L the kind's expiration offset) does not
//     change with expiration, so expiration, which scales every balance of a
//     kind alike, drops out: a waiting client's balance in base units is
//     constant, and an active free client's debt grows by its price times
//     2^(L(t)-ref) per ns, whatever its debt.
//   - Common drift. Most active clients are free clients at minCap with the
//     default prices, all losing priority at one rate r0 in base units, and
//     most priority clients lose pos/cap at one rate too (the default price
//     at minCap per unit of capacity, the same at every capacity when the
//     time factor is 0, as by default). A key is stored, per kind (free
//     clients ranked by debt, priority clients by pos/cap), as a lower bound
//     of the priority in the kind's base units plus the kind's drift D(t0),
//     where D grows by the kind's rate (plus keySlack, 1 unit per second, for
//     rounded balances) times 2^(L(t)-ref) per ns, in closed form
//     (keyDrift.at). The bound it stands for at t is (stored - D(t)) in
//     value units (keyView.eff), which the planner and the curve read. Every
//     stored key of a kind moves by the same D, every free client ranks
//     below every priority client (a free client's bound is at most 0, a
//     priority client's at least 0), so the heaps' order never changes with
//     time and nothing is re-sifted while it passes.
//
// The effective key stays a lower bound:
//
//   - A client falling at most at its kind's rate in base units (every free
//     client at minCap with the default prices, whatever its debt and its
//     decay; a priority client whose price per capacity is at most the
//     kind's) stays above it for ever: its priority at t is at least its
//     priority at t0 minus D(t)-D(t0), and the key is 3 units (and a 2^-45
//     relative margin for float64) below that priority. No timer, no
//     refresh. The settle charges an interval's time at its midpoint offset
//     (SPEC 2.2), a little less than the integral D follows, so the key
//     only grows loose, by about (dt/tau)^2/24 of the spending.
//   - A client falling faster, at s above the rate, is keyed lower by the
//     excess over params.PriorityHorizon, so the bound holds for the
//     horizon, and its timer re-keys it then (rekeyDue): a priority client
//     above minCap (its rank for a slot, pos/minCap, falls at its whole
//     price over minCap), a client with custom prices above the defaults. A member of a shared
//     negative balance is keyed against the group's ceiling, constant in
//     value units, so falling by ceiling/tau in base units. One falling
//     slower (custom prices, a priority client above minCap when the time
//     factor is not 0) has no timer: its key only grows loose, which costs
//     refreshes, never a wrong decision, and the planner re-keys every client
//     it refreshed once its walks are over (tightenKeys), so the keys at the
//     bottom of the heaps, the only ones decisions read, are tight again
//     after every decision.
//   - Events re-key as before: a request (RequestServed), a capacity change,
//     a top-up, a positive balance that runs out (its timer fires then, and
//     the client moves to the free kind), a shared balance that reaches its
//     ceiling.
//   - A changed default price changes the rates, a changed time constant the
//     growth of 2^L: the drifts are settled at the old values first, and a
//     new price re-keys every active client (an operator's action, O(n)).
//     When a drift passes 2^50 (float64 exact to a quarter unit) or L moves
//     4 from ref, the stored keys of the kind are converted to value units of
//     the moment and D starts again from 0 with ref = L (rebaseKeys, at each
//     tryActivate and each minute's persistence; O(n), about once per 2.8
//     time constants, or per 13 days at 1 token/ns without expiration).
//
// Waiting clients compete when something changes (every event ends in
// tryActivate) and when time may have made the best of them out-rank an
// active one: a plan that fails for the best waiting client w leaves a floor,
// the lowest effective key of what it did not take (the frontier's, and an
// unvisited entry's key is at least its parent's there). In base units every
// active client's priority stays at least floor minus the growth of its
// kind's drift since (a client whose key holds for less has its own timer,
// which runs tryActivate), and w's biased priority does not rise (its balance
// only decays, which base units do not show), so w cannot out-rank anyone
// before the drift grew by the gap: after tau*ln(1+gap/(rate*tau)), or
// gap/rate without expiration, the activation timer fires (activationDue). An
// early firing only runs tryActivate again. Waiting clients keep their order
// (see inactiveBest), so the best stays the best. A free client never
// out-ranks a priority client by time alone.
//
// The activation timer is never armed less than activationMinDelay (1 s)
// ahead: with no connected bias, free clients whose debts grow alike would
// otherwise take turns at every timer granularity. Events still run
// tryActivate at once.
//
// # What time costs
//
// Between events nothing is done per client: a client has a timer only where
// something happens to it (above), and the pool has one activation timer. So
// the work per second of pool time is proportional to what happens, each
// event O(log n), not to the number of clients. What happens still grows with
// the pool, by the rules of SPEC 3.2 and 2.5, at any design:
//
//   - Turns. 2n free clients sharing n slots take turns after the connected
//     bias, each holding a slot for a few biases at a time: at the default 3
//     minutes about n/250 activations (and as many evictions) per second.
//     BenchmarkChurnOneSecondSteps reports them per step.
//   - Persistence. Each active client's spending is written once a minute
//     (SPEC 2.5): n/60 writes per second for n active clients. persistAll
//     visits only the active clients and those deactivated since its last
//     run (p.unwritten): a waiting client's balance only decays, which its
//     stored value and the stored offsets already express.
//   - Paid balances running out: one timer firing per client, once.
//
// A pool where nobody waits (BenchmarkChurnOneSecondStepsNoneWaiting) does
// only the churn, the run-outs and the writes.
//
// One enforcement step (enforcement.step) is the rule for the planner and the
// curve: the lowest-ranked client is deactivated when the count is over or it
// is at minCap, else cut by a quarter and re-ranked at its new capacity.
//
// # A pool full by count
//
// While the count is over the limit, the client that gives up its slot is the
// one with the lowest priority at minCap (for a free client, its priority at
// any capacity; for a priority client, pos/minCap): a slot is held at minCap
// at least, so that is each client's rank for a slot, and a newcomer takes a
// slot only by out-ranking it there (biased, at minCap). Only then is the
// capacity enforced, at each client's own capacity. (SPEC 3.2 took the lowest
// at its current capacity: a client evicted that way out-ranked others at
// minCap, came back at once and evicted another, a chain the capacity query
// could not answer.) No chain follows: the evicted client's biased priority at
// minCap is below its exact one, which is at most every other active
// client's at minCap, and below the newcomer's; it comes back only when it
// out-ranks someone at the moment. The outcomes SPEC 3.2 describes hold: a
// paid newcomer to a full pool evicts exactly the lowest-ranked client (by
// rank for a slot); free clients all rank by their negative balances, so they
// take turns only after the connected bias, one eviction per newcomer that
// out-ranks.
//
// # Shared negative balances
//
// Clients with one free-client ID (one IPv4 address or IPv6 /64, so a NAT or
// a LAN) share one negative balance, and every operation on it is O(1)
// whatever the number of clients sharing it, so that many clients of one
// address cannot make each other's requests expensive:
//
//   - Time cost. The active members without a positive balance charge it at
//     one rate, the sum of their time prices (negBalance.rate, kept like the
//     pool's spendRate), settled for the group at once (settleNeg); a member
//     with a positive balance charges its own uncovered time in its settle.
//     A snapshot reads value plus rate times the time since settledAt. What it
//     leaves out, the uncovered time of a sibling whose positive balance ran
//     out since its last settle, is settled by that sibling's threshold
//     timer, which fires when its positive balance runs out.
//   - Ordering keys. While two or more clients share the balance, their keys
//     (active heap and inactive heaps) are computed not from its value but
//     from a ceiling above it: the value plus the group's cost over
//     params.PriorityHorizon (time rate and twice its average request rate),
//     and at least value/32. Priority only falls as the value grows, so each
//     key is a lower bound of its client's priority as long as the value is
//     below the ceiling, and a request of one member re-keys that member only.
//     When the value reaches the ceiling, by a request (RequestServed) or a
//     settle (by time: a member's threshold timer is armed for the moment the
//     group's rate brings the value there), every member is re-keyed against
//     a new ceiling (refreshNeg). Between two refreshes the value grows by
//     at least 3% (or by the group's cost over the horizon), so there are
//     about 32*ln(growth) refreshes in all, not one per request; a balance
//     saturated at MaxInt64 has its ceiling there and is not refreshed again.
//     A ceiling far above a decayed value is lowered at the next re-key of a
//     member (a lower ceiling only makes the refresh come earlier).
//   - Decisions stay right. The planner and the capacity curve compare exact
//     priorities of the moment, as for any client, and the keys of members
//     are lower bounds of their priorities at every decision, like every
//     other key. They are lower than exact keys by at most the ceiling's
//     headroom (3% of the balance, or the group's cost over the horizon),
//     which only makes the planner refresh a few more clients. Among
//     themselves members keep registration order (equal priorities).
//   - Bound. SetMaxPerFreeID (node.Config.MaxPerIP) bounds how many clients
//     one free-client ID may hold registered; a bare pool has none.
//
// # Locks and callbacks
//
// One mutex, ClientPool.mu, guards all pool state. A second mutex, subsMu,
// guards only the list of event subscribers; it is never taken while mu is
// held. The balance store (store.go) has its own two locks, taken after mu:
// store.writeMu serialises database writes, store.mu guards the queue of
// writes not yet on disk. Peer callbacks (UpdateCapacity, Disconnect) and
// events are collected while mu is held and delivered after it is released,
// in the order they were decided: for a public call on the calling goroutine
// before the call returns, for a timer on the timer's goroutine (inside Run
// with mclock.Simulated). Disconnect may call back into the pool, e.g.
// Unregister; UpdateCapacity must not. One goroutine at a time delivers to a
// client: a caller that finds another delivery under way waits for it (the
// condition variable delivered, on mu) and then delivers itself, so its own
// decision reaches the peer before it returns. The BalanceOperation callback
// runs with mu held and must only use the operator it is given.
//
// # Events
//
// Every event is decided and stamped under mu, with the pool clock (Time)
// and the wall clock (Wall), and delivered after it is released, in decision
// order. The pool gives the reason of every deactivation and disconnect
// (Reason) where it decides them: applyPlan's caller says whether a
// deactivation makes room for a client of higher priority (tryActivate,
// SetCapacity) or enforces lowered limits (SetLimits), and deactivate reports
// an eviction of a client whose balance ran out since its activation as
// such (client.ranOut, set by lostPriority, cleared by activate); disconnect's
// callers say why (allowance timer, SetMaxInactive's bound), and Unregister
// says "peer left", deactivating an active client first, so every active
// client gets EventDeactivated before EventDisconnected. A peer refused by
// SetMaxPerFreeID gets EventDisconnected alone. Top-ups (a changed positive
// balance in BalanceOperation or AddBalance) are EventBalanceChanged, before
// the activations or cuts they cause. Reasons exist in events only: what the
// peer is told does not change.
//
// # Database reads and writes
//
// Spending, debt and sweeps are decided under mu and queued, as one batch per
// decision (with the expiration offsets), for a background writer goroutine
// that starts when there is something to write and ends when the queue is
// empty; the queue keeps the newest value per key, and every read looks there
// before the database, so the pool always reads what it decided last. Each
// database write takes everything queued as one atomic batch, so the database
// only moves from one decided state to a later one. A top-up (BalanceOperation,
// AddBalance) is written synchronously, in the same batch as everything queued
// before it, and only confirmed once on disk; if that write fails, the top-up
// is undone and returns the error, and the queued values are queued again.
// That batch, and only that one, is written synced (fsynced, so it survives
// a power loss) when the database's batches implement SyncedBatch, as the
// node's balance database does; a store that cannot sync (go-ethereum's
// ethdb/leveldb) makes it survive a process crash only. Everything else is
// written unsynced: a sync costs about a millisecond of disk time, and what
// it would protect is forgiven spending, not paid tokens. A failed
// background write is logged and queued again too, for the next write (the
// next decision that queues one, or Stop). Register reads the stored
// balances before taking mu and re-reads under it only when a write to the
// same key bucket ended in between. Stop writes everything before it returns
// (a failed write is logged).
//
// What a crash can lose: never a confirmed top-up (nor can a power loss, with
// a SyncedBatch store); each stored balance is its last written value plus
// later top-ups. On a healthy disk the queued tail is at most two batch
// writes behind (the one being written and the next, about a millisecond
// each), so a crash forgives at most params.BalancePersistInterval of
// spending plus that. While a database write hangs, though, the pool keeps
// serving and queueing (where it used to stall on its lock), so a crash
// during such a stall also forgives the spending and debt decided during it;
// the queue stays bounded by the number of clients (newest value per key),
// and past params.MaxQueuedBalanceWrites keys the pool writes synchronously.
//
// A failed database read is never read as "no balance" (a balance decided
// from zero and written back would overwrite a paid one). ethdb has no common
// not-found error, so a failed Get is told apart by Has: a key Has reports
// absent is zero, anything else is a failed read. Register then refuses the
// client (returns nil, as after Stop), BalanceOperation does not run its
// callback and AddBalance returns the error, a capacity or balance query is
// not answered, and the sweep leaves the key alone; each is logged, and
// nothing is written for that client.
//
// # Settings saved at run time
//
// The pool is the only owner of its limits, connected bias and default price
// factors; a program reads them back with Limits, ConnectedBias and
// DefaultFactors. The plain setters (SetLimits, ...) change them in memory
// only, so a bare NewClientPool starts as SPEC 3.1 says. The Save methods
// (SaveLimits, SaveConnectedBias, SaveDefaultFactors) are for changes an
// operator makes at run time: each writes the whole record of saved settings
// under the "set:" key (synced) and applies the setting only once the write
// succeeded, so a failed write is returned and changes nothing. The record
// holds only what was saved; SavedSettings reads it (a corrupt record is
// logged and read as empty, the next save replaces it), and the program
// decides at start whether to restore it (node.New does, see node/doc.go);
// ResetSettings deletes it. Saves are serialised by their own lock, taken
// before mu.
//
// # The hourly sweep
//
// An explicit AddBalance or SetBalance stores its exact result, however small
// (SPEC 2.5); spending and decay of a connected client's balance drop it at
// the next write instead (dropSmall). Stored balances of clients that are not
// connected only decay, and the hourly sweep deletes those that decayed to or
// below params.BalanceDropThreshold. Two rules keep it from deleting a small
// top-up: it scans only the balance kinds that expire (time constant not 0;
// the positive one never does by default), and it deletes a value only once
// the expiration offset's integer part is past the value's exponent. Every
// write aligns the exponent to the integer part of the offset at the write
// (ExpiredValue.Add), so the value has then lost value since it was written;
// a small value written later in the current whole unit of the offset (at
// most ln2 times the time constant) waits for a later sweep.
//
// A client told to Disconnect leaves the active and inactive sets at once and
// is never reactivated; its later Unregister only settles and persists its
// balances.
//
// # One owner of client state
//
// The pool is the only owner of what it decides about a connected client:
// its capacity, balances, price factors and how long it has been registered.
// A transport or an RPC API reads them by node ID (ClientInfo, the sorted and
// bounded ConnectedClients, Connected) and changes prices by node ID
// (SetClientFactors) instead of keeping copies that could fall behind; each
// read is one snapshot under mu. A client is "connected" from Register to
// Unregister, also after it was told to Disconnect. The pool also counts the
// capacity queries it answered (CapacityQueryCounts: zero when none of the
// amounts asked about buys capacity), so nobody decodes its replies again to
// count them.
package clientpool

package clientpool

import (
	"bytes"
	"fmt"
	"math"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/vflux-net/vflux/params"
)

func logWriteError(err error) {
	log.Error("Failed to persist balances", "err", err)
}

// dropSmall zeroes a value at or below the drop threshold (SPEC 2.5): spending
// or decay that brings a balance there drops it instead of storing it.
func dropSmall(v *ExpiredValue, l LogOffset) bool {
	if !v.IsZero() && v.Value(l) <= params.BalanceDropThreshold {
		*v = ExpiredValue{}
		return true
	}
	return false
}

// writeClient adds a client's settled balances to a batch (the caller settles
// first). A value that spending or decay brought to or below the drop
// threshold is not stored; when the client leaves (final) such a value is
// dropped from memory and from the total too, unless other connected clients
// still share it.
func (p *ClientPool) writeClient(b *writeBatch, c *client, now mclock.AbsTime, final bool) {
	if c.posDirty {
		v := c.pos
		c.posDropped = dropSmall(&v, p.posExp.at(now))
		b.putPos(c.id, v)
		c.posDirty = false
	}
	if final && c.posDropped {
		c.pos = ExpiredValue{}
		p.updateTotal(c)
	}
	nb := c.neg
	if nb.dirty {
		v := nb.value
		nb.dropped = dropSmall(&v, p.negExp.at(now))
		b.putNeg(nb.freeID, v)
		nb.dirty = false
	}
	if final && nb.dropped && len(nb.clients) <= 1 {
		nb.value = ExpiredValue{}
	}
}

// persistAll settles the active clients' balances and queues them, with the
// changed balances of clients that are no longer active (p.unwritten) and the
// offsets, as one batch for the database writer. Waiting clients only decay,
// which the stored offsets already express, so they are not visited: the
// work is one write per changed balance (SPEC 2.5), not one per connection.
// Stop passes everyone, so that a change any path left unlisted is written
// too before the pool ends.
func (p *ClientPool) persistAll(now mclock.AbsTime, everyone bool) {
	b := p.st.newBatch()
	var exhausted []*client
	visit := p.active.items
	if everyone {
		visit = make([]*client, 0, len(p.clients))
		for _, c := range p.clients {
			visit = append(visit, c)
		}
	}
	for _, c := range visit {
		if c.settle(now) {
			exhausted = append(exhausted, c)
		}
		p.writeClient(b, c, now, false)
	}
	for _, c := range p.unwritten {
		if p.clients[c.id] == c { // else written by its Unregister
			p.writeClient(b, c, now, false)
		}
	}
	clear(p.unwritten)
	p.unwritten = p.unwritten[:0]
	b.queue(p.posExp.at(now), p.negExp.at(now))
	p.lastOffsets = now
	var acts callbacks
	for _, c := range exhausted {
		if c.pos.IsZero() {
			p.lostPriority(c, now, &acts)
		}
	}
	if len(acts.calls) > 0 || len(acts.events) > 0 {
		// only reachable from the periodic timer; run after unlock there.
		p.pending = append(p.pending, acts)
	}
}

// armPeriodic arms the periodic persistence (every BalancePersistInterval,
// which also keeps the offsets at most ExpirationPersistInterval old) and the
// hourly sweep.
func (p *ClientPool) armPeriodic() {
	p.periodicGen++
	gen := p.periodicGen
	p.periodic = p.clock.AfterFunc(params.BalancePersistInterval, func() { p.onPeriodic(gen) })
}

func (p *ClientPool) onPeriodic(gen uint64) {
	p.mu.Lock()
	if p.stopped || gen != p.periodicGen {
		p.mu.Unlock()
		return
	}
	now := p.clock.Now()
	p.persistAll(now, false)
	p.rebaseKeys(now) // also in a pool where nothing else happens
	sweep := now-p.lastSweep >= mclock.AbsTime(params.BalanceSweepInterval)
	if sweep {
		p.lastSweep = now
	}
	posL, negL := p.posExp.at(now), p.negExp.at(now)
	posDecays, negDecays := p.posExp.tc != 0, p.negExp.tc != 0
	p.armPeriodic()
	pending := p.pending
	p.pending = nil
	var acts callbacks
	if len(pending) > 0 {
		p.tryActivate(now, &acts)
		p.finish(now, &acts)
	}
	p.mu.Unlock()
	for i := range pending {
		pending[i].run(p)
	}
	acts.run(p)
	if sweep {
		p.sweep(posL, negL, posDecays, negDecays)
	}
}

// sweepable reports whether the sweep may delete a stored value at offset l:
// a zero (or corrupt) value, or one that reads at or below the drop threshold
// and has decayed since it was last written. Every write of a balance aligns
// its exponent to the integer part of the offset it was written at
// (ExpiredValue.Add), so once l's integer part is past Exp the value has
// lost value since that write; before that, a small value may be an explicit
// top-up that must stay exactly as stored (SPEC 2.5), and is left for a later
// sweep. See doc.go, "The hourly sweep".
func sweepable(v ExpiredValue, l LogOffset) bool {
	if v.IsZero() {
		return true
	}
	return l.integer() > v.Exp && v.Value(l) <= params.BalanceDropThreshold
}

// sweep deletes stored balances that decayed to or below the drop threshold
// (measured at the offsets posL, negL; see sweepable) and removes them from
// the total token amount. Only kinds that expire are scanned (posDecays,
// negDecays): without expiration nothing decays, and a small stored value is
// an explicit top-up or SetBalance that must stay. The database is scanned
// without the pool lock; the lock is taken only to re-check and delete the
// candidates, so a large database does not stall the pool. Balances of
// connected clients are left to persistAll. A candidate whose re-read fails
// is left alone.
func (p *ClientPool) sweep(posL, negL LogOffset, posDecays, negDecays bool) {
	var (
		posIDs []enode.ID
		negIDs []string
	)
	if posDecays {
		p.st.iterate(posKeyPrefix(), nil, func(suffix []byte, v ExpiredValue, corrupt bool) bool {
			if len(suffix) == len(enode.ID{}) && (corrupt || sweepable(v, posL)) {
				posIDs = append(posIDs, enode.ID(suffix))
			}
			return true
		})
	}
	if negDecays {
		p.st.iterate(negKeyPrefix(), nil, func(suffix []byte, v ExpiredValue, corrupt bool) bool {
			if corrupt || sweepable(v, negL) {
				negIDs = append(negIDs, string(suffix))
			}
			return true
		})
	}
	if len(posIDs) == 0 && len(negIDs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	now := p.clock.Now()
	posL, negL = p.posExp.at(now), p.negExp.at(now)
	b := p.st.newBatch()
	for _, id := range posIDs {
		if p.clients[id] != nil {
			continue // connected: persisted with the drop rule by persistAll
		}
		if v, err := p.st.loadPos(id); err == nil && sweepable(v, posL) { // still small (no top-up since)
			b.putPos(id, ExpiredValue{})
			p.total.SubExp(v)
		}
	}
	for _, freeID := range negIDs {
		if p.negs[freeID] != nil {
			continue
		}
		if v, err := p.st.loadNeg(freeID); err == nil && sweepable(v, negL) {
			b.putNeg(freeID, ExpiredValue{})
		}
	}
	b.queue(posL, negL)
}

// GetPosBalanceIDs returns up to maxCount node IDs with a stored positive
// balance in [start, stop), ascending. Fix: a zero stop means "to the end".
func (p *ClientPool) GetPosBalanceIDs(start, stop enode.ID, maxCount int) []enode.ID {
	if maxCount <= 0 {
		return nil
	}
	// List what was decided before the call, not just what reached the disk;
	// the write happens before the pool lock is taken.
	if err := p.st.flush(nil); err != nil {
		logWriteError(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var (
		ids    []enode.ID
		toEnd  = stop == (enode.ID{})
		prefix = posKeyPrefix()
	)
	p.st.iterate(prefix, start[:], func(suffix []byte, _ ExpiredValue, _ bool) bool {
		if len(suffix) != len(enode.ID{}) {
			return true
		}
		if !toEnd && bytes.Compare(suffix, stop[:]) >= 0 {
			return false
		}
		var id enode.ID
		copy(id[:], suffix)
		ids = append(ids, id)
		return len(ids) < maxCount
	})
	return ids
}

// ----- BalanceOperation -----

// balanceOp is the AtomicBalanceOperator of one BalanceOperation.
type balanceOp struct {
	p          *ClientPool
	c          *client // connected client, or nil
	id         enode.ID
	pos        *ExpiredValue
	neg        *negBalance
	posF, negF PriceFactors
	now        mclock.AbsTime
	posChanged bool
	negChanged bool
}

// GetBalance returns the current balances.
func (op *balanceOp) GetBalance() (pos, neg uint64) {
	return op.pos.Value(op.p.posExp.at(op.now)), op.neg.value.Value(op.p.negExp.at(op.now))
}

// GetRawBalance returns the balances as expiring values.
func (op *balanceOp) GetRawBalance() (pos, neg ExpiredValue) {
	return *op.pos, op.neg.value
}

// GetPriceFactors returns the client's factors, or the pool's defaults for a
// client that is not connected.
func (op *balanceOp) GetPriceFactors() (pos, neg PriceFactors) {
	return op.posF, op.negF
}

// persist writes the operator's positive balance (pos) and, if it was set or
// settled since its last write, the negative balance, with the offsets. The
// caller undoes its change when this fails (SPEC 2.5: a top-up is on disk when
// the call returns, so a failed write must reach the caller).
func (op *balanceOp) persist(pos, neg bool) error {
	b := op.p.st.newBatch()
	if pos {
		b.putPos(op.id, *op.pos)
	}
	neg = neg || op.neg.dirty
	if neg {
		b.putNeg(op.neg.freeID, op.neg.value)
	}
	if err := b.write(op.p.posExp.at(op.now), op.p.negExp.at(op.now)); err != nil {
		return err
	}
	if pos && op.c != nil {
		op.c.posDirty, op.c.posDropped = false, false
	}
	if neg {
		op.neg.dirty, op.neg.dropped = false, false
	}
	return nil
}

// AddBalance adds amount to the positive balance and persists it before it
// returns; a result over MaxInt64 or a failed database write is an error and
// changes nothing. Subtracting more than there is leaves 0.
func (op *balanceOp) AddBalance(amount int64) (old, new uint64, err error) {
	l := op.p.posExp.at(op.now)
	old = op.pos.Value(l)
	if amount > 0 && (old > math.MaxInt64 || uint64(amount) > math.MaxInt64-old) {
		return old, old, fmt.Errorf("add %d tokens to balance %d: %w", amount, old, errBalanceOverflow)
	}
	if amount == 0 {
		return old, old, nil
	}
	prev := *op.pos
	if amount > 0 {
		op.pos.Add(amount, l)
	} else if uint64(-(amount + 1)) >= old { // -amount >= old without overflow
		*op.pos = ExpiredValue{}
	} else {
		op.pos.Add(amount, l)
	}
	if err := op.persist(true, false); err != nil {
		*op.pos = prev
		return old, old, fmt.Errorf("add %d tokens to balance %d: %w", amount, old, err)
	}
	op.posChanged = true
	return old, op.pos.Value(l), nil
}

// SetBalance sets both balances and persists them before it returns. Values
// over MaxInt64 are an error (Fix), as are a non-zero negative balance for the
// empty free-client ID and a failed database write; on error nothing changes.
func (op *balanceOp) SetBalance(pos, neg uint64) error {
	if pos > math.MaxInt64 || neg > math.MaxInt64 {
		return fmt.Errorf("set balance (%d, %d): %w", pos, neg, errBalanceOverflow)
	}
	if neg != 0 && op.neg.freeID == "" {
		return ErrNoFreeID
	}
	prevPos, prevNeg := *op.pos, op.neg.value
	*op.pos = ExpiredValue{}
	op.pos.Add(int64(pos), op.p.posExp.at(op.now))
	op.neg.value = ExpiredValue{}
	op.neg.value.Add(int64(neg), op.p.negExp.at(op.now))
	if err := op.persist(true, true); err != nil {
		*op.pos, op.neg.value = prevPos, prevNeg
		return fmt.Errorf("set balance (%d, %d): %w", pos, neg, err)
	}
	op.posChanged, op.negChanged = true, true
	return nil
}

// BalanceOperation runs cb with atomic access to the balances of node id and
// free-client ID freeID, connected or not. Each AddBalance or SetBalance of the
// operator is persisted before it returns; a failed write undoes that change
// and is returned by it. cb runs with the pool lock held: it must only use the
// operator and must not call into the pool. A connected client's changed
// priority takes effect at once (it may be activated, cut or evicted). After
// Stop, cb is not run; nor is it when a stored balance it needs cannot be read
// (logged): nothing is decided on a balance read as zero.
func (p *ClientPool) BalanceOperation(id enode.ID, freeID string, cb func(AtomicBalanceOperator)) {
	p.balanceOperation(id, freeID, cb)
}

// balanceOperation is BalanceOperation; it returns ErrStopped when the pool
// was stopped and the read error when a stored balance cannot be read, in
// which cases cb was not run.
func (p *ClientPool) balanceOperation(id enode.ID, freeID string, cb func(AtomicBalanceOperator)) error {
	if cb == nil {
		return nil
	}
	var acts callbacks
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return ErrStopped
	}
	now := p.clock.Now()
	op := &balanceOp{p: p, id: id, now: now, posF: p.defPos, negF: p.defNeg}
	c := p.clients[id]
	var err error
	if c == nil {
		var v ExpiredValue
		v, err = p.st.loadPos(id)
		op.pos = &v
	}
	switch {
	case err != nil:
	case c != nil && c.freeID == freeID:
		op.neg = c.neg
	case freeID != "" && p.negs[freeID] != nil:
		op.neg = p.negs[freeID]
	default:
		op.neg = &negBalance{freeID: freeID}
		op.neg.value, err = p.st.loadNeg(freeID)
	}
	if err != nil {
		p.mu.Unlock()
		log.Error("Balance operation refused: a stored balance cannot be read", "id", id, "freeID", freeID, "err", err)
		return err
	}
	if c != nil {
		if c.settle(now) {
			p.lostPriority(c, now, &acts)
		}
		op.c, op.pos, op.posF, op.negF = c, &c.pos, c.posF, c.negF
	}
	for _, s := range op.neg.clients { // the shared balance is settled before it is changed
		if s != c && s.settle(now) {
			p.lostPriority(s, now, &acts)
		}
	}
	oldPos := *op.pos
	hadPriority := !oldPos.IsZero()
	cb(op)
	if op.posChanged || op.negChanged { // each change was persisted by the operator
		if op.posChanged {
			l := p.posExp.at(now)
			if old, new := oldPos.Value(l), op.pos.Value(l); old != new {
				ev := Event{Type: EventBalanceChanged, ID: id, Time: now, OldBalance: old, NewBalance: new}
				if c != nil {
					ev.Capacity = c.capacity
				}
				acts.add(ev)
			}
			if c != nil {
				p.updateTotal(c)
			} else {
				p.total.SubExp(oldPos)
				p.total.AddExp(*op.pos)
			}
		}
		if c != nil {
			if hadPriority && !c.hasPriority() {
				p.lostPriority(c, now, &acts)
			}
			p.priorityChanged(c, now, &acts)
		}
		if op.negChanged {
			for _, s := range op.neg.clients {
				if s != c {
					p.priorityChanged(s, now, &acts)
				}
			}
		}
	}
	p.mu.Unlock()
	acts.run(p)
	return nil
}

// AddBalance adds amount (negative to take tokens away) to the positive
// balance of node id, whose free-client ID is freeID ("" if not connected),
// and returns the balance before and after. The new balance is on disk when it
// returns: a failed database write changes nothing and is returned (SPEC 2.5,
// a paid top-up must survive a crash), and so does a failed read of the
// balance (nothing is decided on it). After Stop it returns ErrStopped.
func (p *ClientPool) AddBalance(id enode.ID, freeID string, amount int64) (old, new uint64, err error) {
	var opErr error
	if err := p.balanceOperation(id, freeID, func(op AtomicBalanceOperator) {
		old, new, opErr = op.AddBalance(amount)
	}); err != nil {
		return 0, 0, err
	}
	return old, new, opErr
}

// storedBalances resolves, under the pool lock, the balances Register read
// ahead for a connecting client: its positive balance and, unless connected
// clients hold it in memory already, its free ID's negative balance. A failed
// read is returned: the client is refused rather than served (and later
// written) with a balance read as zero.
func (p *ClientPool) storedBalances(freeID string, pos, neg readAhead) (posV, negV ExpiredValue, err error) {
	if posV, err = p.st.use(pos); err != nil {
		return ExpiredValue{}, ExpiredValue{}, err
	}
	if freeID == "" || p.negs[freeID] != nil {
		return posV, ExpiredValue{}, nil
	}
	if negV, err = p.st.use(neg); err != nil {
		return ExpiredValue{}, ExpiredValue{}, err
	}
	return posV, negV, nil
}

package clientpool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// Key layout (SPEC 2.5), all under a 2-byte big-endian schema version prefix:
//
//	"pb:" + nodeID (32 bytes) -> RLP(ExpiredValue)  positive balance
//	"nb:" + freeID            -> RLP(ExpiredValue)  negative balance
//	"exp:"                    -> RLP(storedOffsets) both log offsets
//	"set:"                    -> RLP(storedSettings) settings saved at run time (settings.go)
var (
	posPrefix = []byte("pb:")
	negPrefix = []byte("nb:")
	expKey    = []byte("exp:")
	setKey    = []byte("set:")
)

// storedOffsets is the persisted form of the two expiration offsets.
type storedOffsets struct {
	Pos, Neg uint64
}

// versionPrefix returns the schema version prefix.
func versionPrefix() []byte {
	var v [2]byte
	binary.BigEndian.PutUint16(v[:], params.DBVersion)
	return v[:]
}

func dbKey(kind []byte, id []byte) []byte {
	k := make([]byte, 0, 2+len(kind)+len(id))
	k = append(k, versionPrefix()...)
	k = append(k, kind...)
	return append(k, id...)
}

func posKey(id enode.ID) []byte      { return dbKey(posPrefix, id[:]) }
func negKey(freeID string) []byte    { return dbKey(negPrefix, []byte(freeID)) }
func offsetsKey() []byte             { return dbKey(expKey, nil) }
func settingsKey() []byte            { return dbKey(setKey, nil) }
func posKeyPrefix() []byte           { return dbKey(posPrefix, nil) }
func negKeyPrefix() []byte           { return dbKey(negPrefix, nil) }
func idFromPosKey(k []byte) enode.ID { var id enode.ID; copy(id[:], k[2+len(posPrefix):]); return id }

// SyncedBatch is an optional interface of the batches of a balance database:
// WriteSync writes the batch atomically and returns once it is on durable
// storage (fsynced), so it survives a power loss. The pool writes the batch
// of a top-up (AddBalance, SetBalance) with WriteSync when the database's
// batches have it, and everything else with Write. go-ethereum's memorydb and
// ethdb/leveldb batches do not have it (the latter cannot sync at all); the
// node's balance database does. ethdb's SyncKeyValue after Write is not used
// instead: a store that can only sync a write as it is made (goleveldb) has
// no way to implement it.
type SyncedBatch interface {
	ethdb.Batch
	WriteSync() error
}

// store reads and writes balances. Reads go to the database; writes are
// collected into batches by the pool (under the pool lock) and handed to the
// store in decision order. A batch is either written at once (write: a top-up
// must be on disk before it is confirmed; synced when the database's batches
// are SyncedBatches) or queued (queue: spending, debt and sweeps), and a
// background writer goroutine writes the queued batches after the pool lock
// is released, so disk writes do not hold up the pool.
//
// Queued writes are kept per key, newest value only, until they are on disk;
// every read looks there first, so the pool always reads what it decided last.
// Each write to disk is one atomic database batch holding everything queued
// so far (and the synchronous batch, if any, on top), so the database only
// ever moves from one decided state to a later one: a crash loses at most the
// queued tail, spending and debt not yet written, never a confirmed top-up
// (doc.go, "Database reads and writes", says how long that tail can be).
//
// Lock order: the pool lock, then writeMu, then mu. The writer goroutine takes
// only writeMu and mu. mu is never held across database I/O.
type store struct {
	db ethdb.KeyValueStore

	writeMu sync.Mutex // held by whoever writes to the database (writer goroutine or write)

	mu      sync.Mutex        // guards the fields below
	queued  map[string][]byte // newest value per key waiting for the writer; nil value = delete
	writing map[string][]byte // the values being written now (read like queued)
	stamps  [stampBuckets]uint64
	flushes uint64         // number of database writes that ended (stamps hold these numbers)
	running bool           // a writer goroutine is running
	writers sync.WaitGroup // the writer goroutine, for close
}

// stampBuckets is the number of key buckets with a write stamp: a read done
// without the pool lock is reused under it unless a database write to a key
// of the same bucket ended in between (see readAhead).
const stampBuckets = 1024

func stampBucket(key []byte) int {
	h := uint32(2166136261) // FNV-1a
	for _, b := range key {
		h = (h ^ uint32(b)) * 16777619
	}
	return int(h % stampBuckets)
}

// pendingValue returns the queued (or being written) encoding of key, if any;
// ok with a nil enc means the key is to be deleted.
func (s *store) pendingValue(key []byte) (enc []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingLocked(key)
}

func (s *store) pendingLocked(key []byte) (enc []byte, ok bool) {
	if enc, ok = s.queued[string(key)]; ok {
		return enc, true
	}
	enc, ok = s.writing[string(key)]
	return enc, ok
}

// decodeValue decodes a stored expired value; empty is zero, a corrupt value is
// logged and read as zero (SPEC 2.5: it never crashes the node).
func decodeValue(key, enc []byte) ExpiredValue {
	if len(enc) == 0 {
		return ExpiredValue{}
	}
	var v ExpiredValue
	if err := rlp.DecodeBytes(enc, &v); err != nil {
		log.Error("Corrupt balance in database, reading it as zero", "key", fmt.Sprintf("%x", key), "err", err)
		return ExpiredValue{}
	}
	return v
}

// get reads key from the database. A missing key is (nil, nil); any other
// failed read is an error, never "no balance": a balance computed from a
// zero read and written back would overwrite a paid one. ethdb has no common
// not-found error (memorydb's is unexported, LevelDB returns goleveldb's), so
// a failed Get is classified by Has: a key that Has reports absent without an
// error is missing; a key that is there, or a Has that fails too, is a failed
// read.
func (s *store) get(key []byte) ([]byte, error) {
	enc, err := s.db.Get(key)
	if err == nil {
		return enc, nil
	}
	if has, herr := s.db.Has(key); herr == nil && !has {
		return nil, nil
	}
	return nil, fmt.Errorf("read balance %x: %w", key, err)
}

// loadValue reads one expired value as last decided: a queued write if there
// is one, else the database. A missing key is zero; a failed read is an error
// (the caller must then not decide anything for that key).
func (s *store) loadValue(key []byte) (ExpiredValue, error) {
	if enc, ok := s.pendingValue(key); ok {
		return decodeValue(key, enc), nil
	}
	enc, err := s.get(key)
	if err != nil {
		return ExpiredValue{}, err
	}
	return decodeValue(key, enc), nil
}

func (s *store) loadPos(id enode.ID) (ExpiredValue, error) { return s.loadValue(posKey(id)) }

func (s *store) loadNeg(freeID string) (ExpiredValue, error) {
	if freeID == "" {
		return ExpiredValue{}, nil
	}
	return s.loadValue(negKey(freeID))
}

// readAhead is a database value read without the pool lock, with the write
// stamp of its key's bucket at the time of the read.
type readAhead struct {
	key   []byte // nil: nothing read (the value is zero)
	enc   []byte
	err   error // the read failed
	stamp uint64
}

// readAhead reads key from the database without any pool state; use resolves
// it under the pool lock.
func (s *store) readAhead(key []byte) readAhead {
	s.mu.Lock()
	stamp := s.stamps[stampBucket(key)]
	s.mu.Unlock()
	enc, err := s.get(key)
	return readAhead{key: key, enc: enc, err: err, stamp: stamp}
}

// use returns the value of r's key as last decided, called with the pool lock
// held: a queued write if there is one; else the value read ahead if no
// database write to its bucket ended since (a write ends before its values
// leave the queue, so an unchanged stamp means the read saw it); else a new
// read. A failed read (ahead, when it is the one used, or the new one) is
// returned as an error.
func (s *store) use(r readAhead) (ExpiredValue, error) {
	if r.key == nil {
		return ExpiredValue{}, nil
	}
	s.mu.Lock()
	enc, pending := s.pendingLocked(r.key)
	fresh := s.stamps[stampBucket(r.key)] == r.stamp
	s.mu.Unlock()
	switch {
	case pending:
		return decodeValue(r.key, enc), nil
	case fresh && r.err != nil:
		return ExpiredValue{}, r.err
	case fresh:
		return decodeValue(r.key, r.enc), nil
	default:
		return s.loadValue(r.key)
	}
}

// loadOffsets reads the persisted expiration offsets: zero if none or corrupt,
// an error if the database cannot be read (every later write batch carries
// the offsets, so guessing zero would overwrite the real ones).
func (s *store) loadOffsets() (pos, neg LogOffset, err error) {
	enc, err := s.get(offsetsKey())
	if err != nil {
		return 0, 0, err
	}
	if len(enc) == 0 {
		return 0, 0, nil
	}
	var o storedOffsets
	if err := rlp.DecodeBytes(enc, &o); err != nil {
		log.Error("Corrupt expiration offsets in database, starting from zero", "err", err)
		return 0, 0, nil
	}
	return LogOffset(o.Pos), LogOffset(o.Neg), nil
}

// writeBatch collects the balance writes of one pool decision; every batch
// also carries the offsets, so a value and the offset it is measured against
// never disagree after a crash.
type writeBatch struct {
	s       *store
	entries []batchEntry
	err     error // the first failed encoding, returned by write
}

type batchEntry struct {
	key []byte
	enc []byte // nil: delete
}

func (s *store) newBatch() *writeBatch { return &writeBatch{s: s} }

// putValue stores v under key, or deletes the key when v is zero.
func (w *writeBatch) putValue(key []byte, v ExpiredValue) {
	var enc []byte
	if !v.IsZero() {
		var err error
		if enc, err = rlp.EncodeToBytes(&v); err != nil {
			if w.err == nil {
				w.err = fmt.Errorf("encode balance %x: %w", key, err)
			}
			return
		}
	}
	w.entries = append(w.entries, batchEntry{key: key, enc: enc})
}

func (w *writeBatch) putPos(id enode.ID, v ExpiredValue) { w.putValue(posKey(id), v) }

// putNeg stores a negative balance; the free ID "" is never stored.
func (w *writeBatch) putNeg(freeID string, v ExpiredValue) {
	if freeID != "" {
		w.putValue(negKey(freeID), v)
	}
}

// addOffsets adds the expiration offsets to the batch.
func (w *writeBatch) addOffsets(pos, neg LogOffset) {
	if pos < 0 {
		pos = 0
	}
	if neg < 0 {
		neg = 0
	}
	enc, err := rlp.EncodeToBytes(&storedOffsets{Pos: uint64(pos), Neg: uint64(neg)})
	if err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("encode offsets: %w", err)
		}
		return
	}
	w.entries = append(w.entries, batchEntry{key: offsetsKey(), enc: enc})
}

// write adds the offsets and writes the batch to disk now, after everything
// queued before it, in the same atomic database batch. It returns when the
// batch is on disk, or the error.
func (w *writeBatch) write(pos, neg LogOffset) error {
	if w.err != nil {
		return w.err
	}
	w.addOffsets(pos, neg)
	if w.err != nil {
		return w.err
	}
	return w.s.flush(w.entries)
}

// queue adds the offsets and hands the batch to the background writer. A
// failed write is logged by the writer (the values stay decided in memory).
// When more than params.MaxQueuedBalanceWrites keys wait already, it writes
// them itself before it returns, so a slow disk slows the pool down instead of
// letting the queue grow without bound.
func (w *writeBatch) queue(pos, neg LogOffset) {
	if w.err != nil {
		logWriteError(w.err)
		return
	}
	w.addOffsets(pos, neg)
	if w.err != nil {
		logWriteError(w.err)
		return
	}
	s := w.s
	s.mu.Lock()
	if s.queued == nil {
		s.queued = make(map[string][]byte)
	}
	for _, e := range w.entries {
		s.queued[string(e.key)] = e.enc
	}
	full := len(s.queued) > params.MaxQueuedBalanceWrites
	start := !s.running && !full
	if start {
		s.running = true
		s.writers.Add(1)
	}
	s.mu.Unlock()
	switch {
	case full:
		if err := s.flush(nil); err != nil {
			logWriteError(err)
		}
	case start:
		go s.runWriter()
	}
}

// runWriter writes queued batches until the queue is empty, then ends. After
// a failed write it ends too: the values are queued again, and the next
// queued batch (or Stop) tries again, so a failing disk is not retried in a
// busy loop.
func (s *store) runWriter() {
	defer s.writers.Done()
	for {
		s.mu.Lock()
		if len(s.queued) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if err := s.flush(nil); err != nil {
			logWriteError(err)
			s.mu.Lock()
			s.running = false
			s.mu.Unlock()
			return
		}
	}
}

// flush writes everything queued, and then extra (newer than anything queued:
// a synchronous batch, whose caller holds the pool lock), as one atomic
// database batch; with extra (a top-up) it is written synced (SyncedBatch). Writes are serialised by writeMu, so the database sees
// batches in the order they were queued. The queued values stay readable (in
// writing) until the write ended; extra needs not be, as nobody reads pool
// state while its caller holds the pool lock. When the write fails, nothing
// reached the disk: the queued values are queued again (a value queued since
// is newer and wins) and extra is left to its caller to undo.
func (s *store) flush(extra []batchEntry) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if len(s.queued) == 0 && len(extra) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.writing, s.queued = s.queued, s.writing
	s.mu.Unlock()

	err := s.writeEntries(s.writing, extra, len(extra) > 0)

	s.mu.Lock()
	s.flushes++
	for k := range s.writing {
		s.stamps[stampBucket([]byte(k))] = s.flushes
	}
	for _, e := range extra {
		s.stamps[stampBucket(e.key)] = s.flushes
	}
	if err != nil {
		s.requeueLocked()
	}
	if len(s.writing) > reusedMapKeys {
		// A map never shrinks: clearing and iterating one that once held a
		// persistence pass of every connected client would cost every later
		// one-client write that much. Let it go.
		s.writing = nil
	} else {
		clear(s.writing)
	}
	s.mu.Unlock()
	return err
}

// reusedMapKeys is the largest write whose map is reused for later writes.
const reusedMapKeys = 64

// requeueLocked puts the values of a failed write back in the queue, unless a
// newer value was queued meanwhile. A disk that keeps failing would grow the
// queue with every new key: past twice params.MaxQueuedBalanceWrites the queue
// is dropped, with an error in the log (the balances in memory stay as
// decided; what is lost is the unwritten spending and debt of the clients
// that left, which a crash would forgive too).
func (s *store) requeueLocked() {
	if s.queued == nil {
		s.queued = make(map[string][]byte, len(s.writing))
	}
	for k, enc := range s.writing {
		if _, newer := s.queued[k]; !newer {
			s.queued[k] = enc
		}
	}
	if n := len(s.queued); n > 2*params.MaxQueuedBalanceWrites {
		log.Error("Database writes keep failing, dropping queued balance writes", "keys", n)
		s.queued = nil
	}
}

// writeEntries writes the values and then extra as one database batch, with
// WriteSync when synced and the batch has it. Only flush calls it (with
// writeMu held); entries is not changed while it runs.
func (s *store) writeEntries(entries map[string][]byte, extra []batchEntry, synced bool) error {
	b := s.db.NewBatch()
	defer b.Close()
	put := func(k, enc []byte) error {
		if enc == nil {
			return b.Delete(k)
		}
		return b.Put(k, enc)
	}
	for k, enc := range entries {
		if err := put([]byte(k), enc); err != nil {
			return fmt.Errorf("store balance %x: %w", k, err)
		}
	}
	for _, e := range extra {
		if err := put(e.key, e.enc); err != nil {
			return fmt.Errorf("store balance %x: %w", e.key, err)
		}
	}
	write := b.Write
	if sb, ok := b.(SyncedBatch); ok && synced {
		write = sb.WriteSync
	}
	if err := write(); err != nil {
		return fmt.Errorf("write balance batch (%d keys): %w", len(entries)+len(extra), err)
	}
	return nil
}

// close writes everything queued and waits for the writer goroutine to end.
// The pool calls it once, after it stopped deciding.
func (s *store) close() error {
	err := s.flush(nil)
	s.writers.Wait()
	return err
}

// iterate calls fn for every stored value under prefix (the prefix includes
// the version); fn gets the key suffix after the prefix.
func (s *store) iterate(prefix, start []byte, fn func(suffix []byte, v ExpiredValue, corrupt bool) bool) {
	it := s.db.NewIterator(prefix, start)
	defer it.Release()
	for it.Next() {
		k := it.Key()
		if !bytes.HasPrefix(k, prefix) {
			break
		}
		var v ExpiredValue
		corrupt := rlp.DecodeBytes(it.Value(), &v) != nil
		if corrupt {
			v = ExpiredValue{}
		}
		suffix := append([]byte(nil), k[len(prefix):]...)
		if !fn(suffix, v, corrupt) {
			return
		}
	}
}

package node

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/log"
	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/params"
)

// balanceDB is the balance database of a node with a data directory: a
// goleveldb database behind ethdb.KeyValueStore, opened directly rather than
// through go-ethereum's ethdb/leveldb wrapper because that wrapper cannot
// sync (its batch Write passes no write options and its SyncKeyValue does
// nothing). Its batches can be written synced (WriteSync, the optional
// interface clientpool.SyncedBatch): the pool writes top-ups that way, so a
// confirmed top-up survives a power loss, and everything else unsynced
// (SPEC 6; clientpool doc.go, "Database reads and writes").
type balanceDB struct {
	db *leveldb.DB
	// syncedWrites counts batches written with WriteSync: the seam where a
	// test sees that a top-up took the synced path.
	syncedWrites atomic.Uint64
}

var _ ethdb.KeyValueStore = (*balanceDB)(nil)

// openBalanceLevelDB opens (or creates) the LevelDB directory path with a
// cache of cacheMiB MiB (half block cache, a quarter per write buffer, as
// go-ethereum sizes its own) and at most handles open files; Config.Validate
// bounds both. A database whose files are corrupt (say a half-written
// manifest after a crash) is recovered, as go-ethereum does.
func openBalanceLevelDB(path string, cacheMiB, handles int) (*balanceDB, error) {
	cacheMiB = max(cacheMiB, params.MinDatabaseCache)
	handles = max(handles, params.MinDatabaseHandles)
	o := &opt.Options{
		Filter:                 filter.NewBloomFilter(10),
		DisableSeeksCompaction: true,
		OpenFilesCacheCapacity: handles,
		BlockCacheCapacity:     cacheMiB / 2 * opt.MiB,
		WriteBuffer:            cacheMiB / 4 * opt.MiB,
	}
	db, err := leveldb.OpenFile(path, o)
	var corrupt *lerrors.ErrCorrupted
	if errors.As(err, &corrupt) {
		log.Warn("Balance database corrupt, recovering", "path", path, "err", err)
		db, err = leveldb.RecoverFile(path, o)
	}
	if err != nil {
		return nil, err
	}
	log.Info("Opened balance database", "path", path, "cache", fmt.Sprintf("%d MiB", cacheMiB), "handles", handles)
	return &balanceDB{db: db}, nil
}

// Has reports whether key is stored.
func (d *balanceDB) Has(key []byte) (bool, error) { return d.db.Has(key, nil) }

// Get returns the value of key; a missing key is goleveldb's ErrNotFound.
func (d *balanceDB) Get(key []byte) ([]byte, error) { return d.db.Get(key, nil) }

// Put stores a value (unsynced).
func (d *balanceDB) Put(key, value []byte) error { return d.db.Put(key, value, nil) }

// Delete removes a key (unsynced).
func (d *balanceDB) Delete(key []byte) error { return d.db.Delete(key, nil) }

// DeleteRange removes every key in [start, end) in one batch.
func (d *balanceDB) DeleteRange(start, end []byte) error {
	b := new(leveldb.Batch)
	if _, err := d.rangeDeletes(b, start, end); err != nil {
		return err
	}
	return d.db.Write(b, nil)
}

// rangeDeletes adds a delete for every stored key in [start, end) to b and
// returns the bytes of the keys.
func (d *balanceDB) rangeDeletes(b *leveldb.Batch, start, end []byte) (int, error) {
	it := d.db.NewIterator(&util.Range{Start: start, Limit: end}, nil)
	defer it.Release()
	n := 0
	for it.Next() {
		b.Delete(it.Key()) // the batch copies the key
		n += len(it.Key())
	}
	return n, it.Error()
}

// Stat returns LevelDB's statistics.
func (d *balanceDB) Stat() (string, error) { return d.db.GetProperty("leveldb.stats") }

// SyncKeyValue does nothing: goleveldb offers no way to sync writes already
// made, only to sync a write as it is made. Writes that must be durable are
// made with WriteSync.
func (d *balanceDB) SyncKeyValue() error { return nil }

// Compact compacts the key range [start, limit); nil means open.
func (d *balanceDB) Compact(start, limit []byte) error {
	return d.db.CompactRange(util.Range{Start: start, Limit: limit})
}

// NewIterator iterates the keys with prefix, from prefix+start on, in order.
func (d *balanceDB) NewIterator(prefix, start []byte) ethdb.Iterator {
	r := util.BytesPrefix(prefix)
	r.Start = append(append([]byte(nil), prefix...), start...) // BytesPrefix's Start is prefix itself
	return d.db.NewIterator(r, nil)
}

// Close closes the database; unsynced writes reach the OS before it returns.
func (d *balanceDB) Close() error { return d.db.Close() }

// NewBatch returns an empty batch.
func (d *balanceDB) NewBatch() ethdb.Batch { return &balanceBatch{db: d, b: new(leveldb.Batch)} }

// NewBatchWithSize returns an empty batch with room for size bytes.
func (d *balanceDB) NewBatchWithSize(size int) ethdb.Batch {
	return &balanceBatch{db: d, b: leveldb.MakeBatch(size)}
}

// balanceBatch collects writes for one atomic LevelDB write.
type balanceBatch struct {
	db   *balanceDB
	b    *leveldb.Batch
	size int // bytes of keys and values, as ethdb.Batch.ValueSize counts them
}

func (b *balanceBatch) Put(key, value []byte) error {
	b.b.Put(key, value)
	b.size += len(key) + len(value)
	return nil
}

func (b *balanceBatch) Delete(key []byte) error {
	b.b.Delete(key)
	b.size += len(key)
	return nil
}

// DeleteRange adds a delete of every key stored in [start, end) now.
func (b *balanceBatch) DeleteRange(start, end []byte) error {
	n, err := b.db.rangeDeletes(b.b, start, end)
	b.size += n
	return err
}

func (b *balanceBatch) ValueSize() int { return b.size }

// Write writes the batch atomically, unsynced: on return it is in the OS
// (it survives the process), not necessarily on the disk.
func (b *balanceBatch) Write() error { return b.db.db.Write(b.b, nil) }

// WriteSync writes the batch atomically and returns once it is on the disk
// (the journal is fsynced): it survives a power loss.
func (b *balanceBatch) WriteSync() error {
	if err := b.db.db.Write(b.b, &opt.WriteOptions{Sync: true}); err != nil {
		return err
	}
	b.db.syncedWrites.Add(1)
	return nil
}

func (b *balanceBatch) Reset() {
	b.b.Reset()
	b.size = 0
}

// Replay applies the batch's writes to w in order; the first error stops it.
func (b *balanceBatch) Replay(w ethdb.KeyValueWriter) error {
	r := &replayer{w: w}
	if err := b.b.Replay(r); err != nil {
		return err
	}
	return r.err
}

func (b *balanceBatch) Close() {}

// replayer adapts an ethdb.KeyValueWriter to goleveldb's BatchReplay, whose
// methods return no error: it keeps the first one and skips the rest.
type replayer struct {
	w   ethdb.KeyValueWriter
	err error
}

func (r *replayer) Put(key, value []byte) {
	if r.err == nil {
		r.err = r.w.Put(key, value)
	}
}

func (r *replayer) Delete(key []byte) {
	if r.err == nil {
		r.err = r.w.Delete(key)
	}
}

var _ clientpool.SyncedBatch = (*balanceBatch)(nil)

package clientpool

import (
	"bytes"
	"encoding/binary"
	"fmt"

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
var (
	posPrefix = []byte("pb:")
	negPrefix = []byte("nb:")
	expKey    = []byte("exp:")
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
func posKeyPrefix() []byte           { return dbKey(posPrefix, nil) }
func negKeyPrefix() []byte           { return dbKey(negPrefix, nil) }
func idFromPosKey(k []byte) enode.ID { var id enode.ID; copy(id[:], k[2+len(posPrefix):]); return id }

// store reads and writes balances. It has no lock of its own: the pool calls it
// with its lock held.
type store struct {
	db ethdb.KeyValueStore
}

// loadValue reads one expired value; a missing key is zero, a corrupt value is
// logged and read as zero (SPEC 2.5: it never crashes the node).
func (s *store) loadValue(key []byte) ExpiredValue {
	enc, err := s.db.Get(key)
	if err != nil || len(enc) == 0 {
		return ExpiredValue{}
	}
	var v ExpiredValue
	if err := rlp.DecodeBytes(enc, &v); err != nil {
		log.Error("Corrupt balance in database, reading it as zero", "key", fmt.Sprintf("%x", key), "err", err)
		return ExpiredValue{}
	}
	return v
}

func (s *store) loadPos(id enode.ID) ExpiredValue { return s.loadValue(posKey(id)) }

func (s *store) loadNeg(freeID string) ExpiredValue {
	if freeID == "" {
		return ExpiredValue{}
	}
	return s.loadValue(negKey(freeID))
}

// loadOffsets reads the persisted expiration offsets (zero if none or corrupt).
func (s *store) loadOffsets() (pos, neg LogOffset) {
	enc, err := s.db.Get(offsetsKey())
	if err != nil || len(enc) == 0 {
		return 0, 0
	}
	var o storedOffsets
	if err := rlp.DecodeBytes(enc, &o); err != nil {
		log.Error("Corrupt expiration offsets in database, starting from zero", "err", err)
		return 0, 0
	}
	return LogOffset(o.Pos), LogOffset(o.Neg)
}

// writeBatch collects balance writes; every batch also carries the offsets, so
// a value and the offset it is measured against never disagree after a crash.
type writeBatch struct {
	b   ethdb.Batch
	err error // the first failed put, returned by write
}

func (s *store) newBatch() *writeBatch { return &writeBatch{b: s.db.NewBatch()} }

// putValue stores v under key, or deletes the key when v is zero. A failure is
// kept for write to return.
func (w *writeBatch) putValue(key []byte, v ExpiredValue) {
	var err error
	if v.IsZero() {
		err = w.b.Delete(key)
	} else {
		var enc []byte
		if enc, err = rlp.EncodeToBytes(&v); err == nil {
			err = w.b.Put(key, enc)
		}
	}
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("store balance %x: %w", key, err)
	}
}

func (w *writeBatch) putPos(id enode.ID, v ExpiredValue) { w.putValue(posKey(id), v) }

// putNeg stores a negative balance; the free ID "" is never stored.
func (w *writeBatch) putNeg(freeID string, v ExpiredValue) {
	if freeID != "" {
		w.putValue(negKey(freeID), v)
	}
}

// write adds the offsets, writes the batch and releases it.
func (w *writeBatch) write(pos, neg LogOffset) error {
	defer w.b.Close()
	if w.err != nil {
		return w.err
	}
	if pos < 0 {
		pos = 0
	}
	if neg < 0 {
		neg = 0
	}
	enc, err := rlp.EncodeToBytes(&storedOffsets{Pos: uint64(pos), Neg: uint64(neg)})
	if err != nil {
		return fmt.Errorf("encode offsets: %w", err)
	}
	if err := w.b.Put(offsetsKey(), enc); err != nil {
		return fmt.Errorf("store offsets: %w", err)
	}
	if err := w.b.Write(); err != nil {
		return fmt.Errorf("write balance batch: %w", err)
	}
	return nil
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

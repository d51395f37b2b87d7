package clientpool

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// Settings are the pool settings an operator changed at run time through the
// Save methods, as they are on disk. A nil field was never saved (or was
// discarded by ResetSettings): the value the program set with the plain
// setter is in effect for it.
type Settings struct {
	Limits         *Limits
	ConnectedBias  *time.Duration
	DefaultFactors *DefaultFactors
}

// Limits are the limits of SetLimits.
type Limits struct {
	MaxCount, MaxCap uint64
}

// DefaultFactors are the price factors of SetDefaultFactors.
type DefaultFactors struct {
	Pos, Neg PriceFactors
}

// IsEmpty reports whether no setting is saved.
func (s Settings) IsEmpty() bool {
	return s.Limits == nil && s.ConnectedBias == nil && s.DefaultFactors == nil
}

// errCorruptSettings is wrapped by every decoding error of a stored record.
var errCorruptSettings = errors.New("corrupt settings record")

// Bits of storedSettings.Saved.
const (
	savedLimits uint64 = 1 << iota
	savedBias
	savedFactors
	savedAll = savedLimits | savedBias | savedFactors
)

// storedSettings is the persisted form of Settings under settingsKey. RLP has
// no floats: a factor is stored as its IEEE 754 bits, so it reads back
// exactly as it was saved.
type storedSettings struct {
	Saved            uint64 // which settings are saved (savedLimits, ...)
	MaxCount, MaxCap uint64
	Bias             uint64    // nanoseconds
	Factors          [6]uint64 // math.Float64bits of pos time, capacity, request, then neg
}

func encodeSettings(s Settings) ([]byte, error) {
	var st storedSettings
	if s.Limits != nil {
		st.Saved |= savedLimits
		st.MaxCount, st.MaxCap = s.Limits.MaxCount, s.Limits.MaxCap
	}
	if s.ConnectedBias != nil {
		st.Saved |= savedBias
		st.Bias = uint64(*s.ConnectedBias)
	}
	if f := s.DefaultFactors; f != nil {
		st.Saved |= savedFactors
		for i, v := range []float64{f.Pos.TimeFactor, f.Pos.CapacityFactor, f.Pos.RequestFactor, f.Neg.TimeFactor, f.Neg.CapacityFactor, f.Neg.RequestFactor} {
			st.Factors[i] = math.Float64bits(v)
		}
	}
	return rlp.EncodeToBytes(&st)
}

// decodeSettings decodes a stored record; one that does not decode, or holds
// a value no setter accepts, is an error wrapping errCorruptSettings.
func decodeSettings(enc []byte) (Settings, error) {
	var st storedSettings
	if err := rlp.DecodeBytes(enc, &st); err != nil {
		return Settings{}, fmt.Errorf("%w: %v", errCorruptSettings, err)
	}
	if st.Saved&^savedAll != 0 {
		return Settings{}, fmt.Errorf("%w: unknown settings saved (bits %#x)", errCorruptSettings, st.Saved)
	}
	var s Settings
	if st.Saved&savedLimits != 0 {
		s.Limits = &Limits{MaxCount: st.MaxCount, MaxCap: st.MaxCap}
	}
	if st.Saved&savedBias != 0 {
		if st.Bias > uint64(params.MaxConnectedBias) {
			return Settings{}, fmt.Errorf("%w: connected bias %d ns over the limit %v", errCorruptSettings, st.Bias, params.MaxConnectedBias)
		}
		bias := time.Duration(st.Bias)
		s.ConnectedBias = &bias
	}
	if st.Saved&savedFactors != 0 {
		var v [6]float64
		for i, bits := range st.Factors {
			v[i] = math.Float64frombits(bits)
		}
		f := DefaultFactors{
			Pos: PriceFactors{TimeFactor: v[0], CapacityFactor: v[1], RequestFactor: v[2]},
			Neg: PriceFactors{TimeFactor: v[3], CapacityFactor: v[4], RequestFactor: v[5]},
		}
		if !f.Pos.valid() || !f.Neg.valid() {
			return Settings{}, fmt.Errorf("%w: negative or non-finite price factors %v", errCorruptSettings, v)
		}
		s.DefaultFactors = &f
	}
	return s, nil
}

// savedSettings is the pool's record of the settings saved on disk.
//
// Lock order: mu before the pool lock (a Save method applies its setting with
// the plain setter while holding mu, so Save calls take effect in the order
// they were written); mu is held across the database write.
type savedSettings struct {
	mu     sync.Mutex
	loaded bool     // cur holds what is on disk
	cur    Settings // the saved settings (valid when loaded)
}

// loadSettingsLocked reads the saved settings into the record once; called
// with saved.mu held. A missing key is no saved setting; a corrupt record is
// logged and read as none (the next Save overwrites it); a failed read is an
// error and leaves the record unloaded.
func (p *ClientPool) loadSettingsLocked() error {
	if p.saved.loaded {
		return nil
	}
	enc, err := p.st.get(settingsKey())
	if err != nil {
		return fmt.Errorf("read saved settings: %w", err)
	}
	var s Settings
	if len(enc) > 0 {
		if s, err = decodeSettings(enc); err != nil {
			log.Error("Saved pool settings are unreadable, ignoring them: the configured values stay in effect", "err", err)
			s = Settings{}
		}
	}
	p.saved.cur, p.saved.loaded = s, true
	return nil
}

// writeSettings writes s under settingsKey (deletes it when s is empty) as
// one batch, synced when the database's batches are SyncedBatches. The key is
// not a balance: no queued balance write touches it, so it needs no ordering
// with the background writer.
func (p *ClientPool) writeSettings(s Settings) error {
	b := p.st.db.NewBatch()
	defer b.Close()
	if s.IsEmpty() {
		if err := b.Delete(settingsKey()); err != nil {
			return fmt.Errorf("write saved settings: %w", err)
		}
	} else {
		enc, err := encodeSettings(s)
		if err != nil {
			return fmt.Errorf("encode saved settings: %w", err)
		}
		if err := b.Put(settingsKey(), enc); err != nil {
			return fmt.Errorf("write saved settings: %w", err)
		}
	}
	write := b.Write
	if sb, ok := b.(SyncedBatch); ok {
		write = sb.WriteSync
	}
	if err := write(); err != nil {
		return fmt.Errorf("write saved settings: %w", err)
	}
	return nil
}

// SavedSettings returns the settings saved on disk by the Save methods (read
// once, then kept). It does not apply them: a program restoring them at start
// calls the plain setters (see node.New). A corrupt record is logged and
// reads as no saved setting; a failed read is an error.
func (p *ClientPool) SavedSettings() (Settings, error) {
	p.saved.mu.Lock()
	defer p.saved.mu.Unlock()
	if err := p.loadSettingsLocked(); err != nil {
		return Settings{}, err
	}
	return p.saved.cur, nil
}

// save writes the saved settings with change made and, once they are on
// disk, runs apply (the plain setter). A failed write changes nothing and is
// returned; so is a failed read of the record, which change needs. After Stop
// it returns ErrStopped.
func (p *ClientPool) save(change func(*Settings), apply func()) error {
	p.saved.mu.Lock()
	defer p.saved.mu.Unlock()
	if p.isStopped() {
		return ErrStopped
	}
	if err := p.loadSettingsLocked(); err != nil {
		return err
	}
	next := p.saved.cur
	change(&next)
	if err := p.writeSettings(next); err != nil {
		return err
	}
	p.saved.cur = next
	apply()
	return nil
}

// SaveLimits is SetLimits, with the limits saved on disk (synced) before they
// take effect: a program that restores SavedSettings at start keeps them
// across a restart. A failed write is returned and changes nothing.
func (p *ClientPool) SaveLimits(maxCount, maxCap uint64) error {
	return p.save(func(s *Settings) { s.Limits = &Limits{MaxCount: maxCount, MaxCap: maxCap} },
		func() { p.SetLimits(maxCount, maxCap) })
}

// SaveConnectedBias is SetConnectedBias, with the bias saved on disk first
// (see SaveLimits). A negative bias or one over params.MaxConnectedBias is an
// error.
func (p *ClientPool) SaveConnectedBias(bias time.Duration) error {
	if bias < 0 || bias > params.MaxConnectedBias {
		return fmt.Errorf("connected bias %v is out of range: allowed 0 to %v", bias, params.MaxConnectedBias)
	}
	return p.save(func(s *Settings) { s.ConnectedBias = &bias },
		func() { p.SetConnectedBias(bias) })
}

// SaveDefaultFactors is SetDefaultFactors, with the factors saved on disk
// first (see SaveLimits). Negative or non-finite factors are an error.
func (p *ClientPool) SaveDefaultFactors(pos, neg PriceFactors) error {
	if !pos.valid() || !neg.valid() {
		return fmt.Errorf("price factors %+v, %+v: negative or not finite", pos, neg)
	}
	return p.save(func(s *Settings) { s.DefaultFactors = &DefaultFactors{Pos: pos, Neg: neg} },
		func() { p.SetDefaultFactors(pos, neg) })
}

// ResetSettings deletes the saved settings from disk. The settings in effect
// do not change; from the next start on, the program's own values apply. A
// failed write is returned.
func (p *ClientPool) ResetSettings() error {
	p.saved.mu.Lock()
	defer p.saved.mu.Unlock()
	if p.isStopped() {
		return ErrStopped
	}
	// No read first: a reset must work on a record that cannot be read.
	if err := p.writeSettings(Settings{}); err != nil {
		return err
	}
	p.saved.cur, p.saved.loaded = Settings{}, true
	return nil
}

func (p *ClientPool) isStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

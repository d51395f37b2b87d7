package clientpool

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/params"
)

// freshPool is a pool over db as a program creates it at start, before it
// applies its own settings.
func freshPool(t *testing.T, db ethdb.KeyValueStore) *ClientPool {
	t.Helper()
	pool := NewClientPool(db, 1, 0, &mclock.Simulated{}, nil)
	t.Cleanup(pool.Stop)
	return pool
}

func savedOf(t *testing.T, pool *ClientPool) Settings {
	t.Helper()
	s, err := pool.SavedSettings()
	if err != nil {
		t.Fatalf("SavedSettings: %v", err)
	}
	return s
}

// captureLog sends the default logger's output to a buffer until the test ends.
func captureLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prev := log.Root()
	log.SetDefault(log.NewLogger(log.NewTerminalHandler(&buf, false)))
	t.Cleanup(func() { log.SetDefault(prev) })
	return &buf
}

func TestSavedSettingsTakeEffectAndReadBackExactlyAfterARestart(t *testing.T) {
	db := memorydb.New()
	pool := freshPool(t, db)
	// Factors that are not round in binary: they must come back bit for bit.
	pos := PriceFactors{TimeFactor: 0.37 / 1e9, CapacityFactor: math.SmallestNonzeroFloat64, RequestFactor: 1.0 / 3}
	neg := PriceFactors{TimeFactor: 2e-9, CapacityFactor: 0, RequestFactor: math.MaxFloat64}
	bias := 42*time.Second + 7
	if err := pool.SaveLimits(7, 7000); err != nil {
		t.Fatal(err)
	}
	if err := pool.SaveConnectedBias(bias); err != nil {
		t.Fatal(err)
	}
	if err := pool.SaveDefaultFactors(pos, neg); err != nil {
		t.Fatal(err)
	}
	if c, m := pool.Limits(); c != 7 || m != 7000 {
		t.Fatalf("limits in effect (%d, %d), want the saved (7, 7000)", c, m)
	}
	if got := pool.ConnectedBias(); got != bias {
		t.Fatalf("bias in effect %v, want %v", got, bias)
	}
	if p, n := pool.DefaultFactors(); p != pos || n != neg {
		t.Fatalf("factors in effect %+v, %+v, want %+v, %+v", p, n, pos, neg)
	}
	pool.Stop()

	// A new pool starts as SPEC 3.1 says; the saved settings are there to restore.
	again := freshPool(t, db)
	if c, m := again.Limits(); c != 0 || m != 0 {
		t.Fatalf("a new pool applied saved limits by itself: (%d, %d)", c, m)
	}
	if p, n := again.DefaultFactors(); p != (PriceFactors{}) || n != (PriceFactors{}) {
		t.Fatalf("a new pool applied saved factors by itself: %+v, %+v", p, n)
	}
	s := savedOf(t, again)
	if s.Limits == nil || *s.Limits != (Limits{MaxCount: 7, MaxCap: 7000}) {
		t.Errorf("saved limits %+v, want {7 7000}", s.Limits)
	}
	if s.ConnectedBias == nil || *s.ConnectedBias != bias {
		t.Errorf("saved bias %v, want %v", s.ConnectedBias, bias)
	}
	if s.DefaultFactors == nil || *s.DefaultFactors != (DefaultFactors{Pos: pos, Neg: neg}) {
		t.Errorf("saved factors %+v, want %+v, %+v", s.DefaultFactors, pos, neg)
	}
}

func TestOnlyTheSettingsSavedAreInTheRecord(t *testing.T) {
	db := memorydb.New()
	pool := freshPool(t, db)
	pool.SetConnectedBias(time.Minute) // a plain setter saves nothing
	if err := pool.SaveLimits(3, 300); err != nil {
		t.Fatal(err)
	}
	if err := pool.SaveLimits(4, 400); err != nil { // the newest wins
		t.Fatal(err)
	}
	pool.Stop()
	s := savedOf(t, freshPool(t, db))
	if s.ConnectedBias != nil || s.DefaultFactors != nil {
		t.Fatalf("settings never saved are in the record: %+v", s)
	}
	if s.Limits == nil || *s.Limits != (Limits{MaxCount: 4, MaxCap: 400}) {
		t.Fatalf("saved limits %+v, want {4 400}", s.Limits)
	}
}

func TestSettingsAreStoredUnderTheVersionedSettingsKeyAndSynced(t *testing.T) {
	db := &recordingDB{KeyValueStore: memorydb.New()}
	pool := freshPool(t, db)
	before := len(db.since(0))
	if err := pool.SaveConnectedBias(time.Second); err != nil {
		t.Fatal(err)
	}
	want := append([]byte{byte(params.DBVersion >> 8), byte(params.DBVersion)}, "set:"...)
	writes := db.since(before)
	if len(writes) != 1 || !writes[0].synced || len(writes[0].keys) != 1 || writes[0].keys[0] != string(want) {
		t.Fatalf("writes of SaveConnectedBias %v, want one synced write of key %q", writes, want)
	}
	if ok, _ := db.Has(want); !ok {
		t.Fatalf("no record under %q", want)
	}
}

func TestACorruptSettingsRecordIsLoggedAndIgnored(t *testing.T) {
	enc := func(st storedSettings) []byte {
		b, err := rlp.EncodeToBytes(&st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var negFactor storedSettings
	negFactor.Saved = savedFactors
	negFactor.Factors[4] = math.Float64bits(-1)
	var nanFactor storedSettings
	nanFactor.Saved = savedFactors
	nanFactor.Factors[0] = math.Float64bits(math.NaN())
	tests := []struct {
		name string
		enc  []byte
	}{
		{"not RLP", []byte{0xff, 0x13, 0x37}},
		{"a list too short", []byte{0xc1, 0x01}},
		{"unknown settings saved", enc(storedSettings{Saved: 1 << 7})},
		{"a bias over the limit", enc(storedSettings{Saved: savedBias, Bias: uint64(params.MaxConnectedBias) + 1})},
		{"a negative factor", enc(negFactor)},
		{"a NaN factor", enc(nanFactor)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := memorydb.New()
			db.Put(settingsKey(), tt.enc)
			out := captureLog(t)
			pool := freshPool(t, db)
			s := savedOf(t, pool)
			if !s.IsEmpty() {
				t.Fatalf("corrupt record read as %+v, want no saved setting", s)
			}
			if !strings.Contains(out.String(), "Saved pool settings are unreadable") {
				t.Fatalf("corrupt record not logged; log:\n%s", out)
			}
			// The next save replaces it with a good record.
			if err := pool.SaveLimits(2, 20); err != nil {
				t.Fatal(err)
			}
			pool.Stop()
			if s := savedOf(t, freshPool(t, db)); s.Limits == nil || s.Limits.MaxCount != 2 {
				t.Fatalf("record after a save over the corrupt one: %+v", s)
			}
		})
	}
}

func TestAFailedSettingsWriteIsReturnedAndChangesNothing(t *testing.T) {
	db := newFailingDB()
	pool := freshPool(t, db)
	if err := pool.SaveLimits(1, 10); err != nil {
		t.Fatal(err)
	}
	pool.SetConnectedBias(time.Minute)
	factors := PriceFactors{TimeFactor: 1e-9}
	pool.SetDefaultFactors(factors, factors)

	db.fail.Store(true)
	if err := pool.SaveLimits(5, 50); !errors.Is(err, errDiskFull) {
		t.Errorf("SaveLimits on a failing disk: %v, want the write error", err)
	}
	if err := pool.SaveConnectedBias(time.Hour); !errors.Is(err, errDiskFull) {
		t.Errorf("SaveConnectedBias on a failing disk: %v, want the write error", err)
	}
	if err := pool.SaveDefaultFactors(PriceFactors{}, PriceFactors{}); !errors.Is(err, errDiskFull) {
		t.Errorf("SaveDefaultFactors on a failing disk: %v, want the write error", err)
	}
	if err := pool.ResetSettings(); !errors.Is(err, errDiskFull) {
		t.Errorf("ResetSettings on a failing disk: %v, want the write error", err)
	}
	if c, m := pool.Limits(); c != 1 || m != 10 {
		t.Errorf("limits after a failed save (%d, %d), want (1, 10)", c, m)
	}
	if b := pool.ConnectedBias(); b != time.Minute {
		t.Errorf("bias after a failed save %v, want 1m", b)
	}
	if p, n := pool.DefaultFactors(); p != factors || n != factors {
		t.Errorf("factors after a failed save %+v, %+v", p, n)
	}
	s := savedOf(t, pool)
	if s.Limits == nil || *s.Limits != (Limits{MaxCount: 1, MaxCap: 10}) || s.ConnectedBias != nil || s.DefaultFactors != nil {
		t.Errorf("saved settings after failed saves %+v, want only the limits (1, 10)", s)
	}
	db.fail.Store(false)
	pool.Stop()
	if s := savedOf(t, freshPool(t, db)); s.Limits == nil || *s.Limits != (Limits{MaxCount: 1, MaxCap: 10}) || s.ConnectedBias != nil {
		t.Errorf("record on disk after failed saves %+v, want only the limits (1, 10)", s)
	}
}

func TestAFailedReadOfTheSettingsRecordIsAnError(t *testing.T) {
	db := memorydb.New()
	pool := NewClientPool(db, 1, 0, &mclock.Simulated{}, nil)
	defer pool.Stop()
	db.Close() // every read fails, and Has too: not "no record"
	if s, err := pool.SavedSettings(); err == nil {
		t.Fatalf("SavedSettings on an unreadable disk = %+v, no error", s)
	}
	if err := pool.SaveLimits(1, 1); err == nil || !strings.Contains(err.Error(), "read saved settings") {
		t.Fatalf("SaveLimits on an unreadable disk: %v, want the read error", err)
	}
	if c, m := pool.Limits(); c != 0 || m != 0 {
		t.Fatalf("limits changed to (%d, %d) by a save that failed", c, m)
	}
}

func TestResetSettingsDiscardsTheRecordButNotTheValuesInEffect(t *testing.T) {
	db := memorydb.New()
	db.Put(settingsKey(), []byte{0xff}) // even an unreadable one
	pool := freshPool(t, db)
	if err := pool.ResetSettings(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.Has(settingsKey()); ok {
		t.Fatal("the corrupt record is still there after ResetSettings")
	}
	if err := pool.SaveLimits(9, 90); err != nil {
		t.Fatal(err)
	}
	if err := pool.ResetSettings(); err != nil {
		t.Fatal(err)
	}
	if c, m := pool.Limits(); c != 9 || m != 90 {
		t.Fatalf("limits in effect after ResetSettings (%d, %d), want (9, 90)", c, m)
	}
	if s := savedOf(t, pool); !s.IsEmpty() {
		t.Fatalf("saved settings after ResetSettings %+v", s)
	}
	pool.Stop()
	if s := savedOf(t, freshPool(t, db)); !s.IsEmpty() {
		t.Fatalf("record on disk after ResetSettings %+v", s)
	}
}

func TestSavesAreRefusedAfterStopAndBadValuesAlways(t *testing.T) {
	pool := freshPool(t, memorydb.New())
	if err := pool.SaveConnectedBias(-time.Second); err == nil {
		t.Error("a negative bias was saved")
	}
	if err := pool.SaveConnectedBias(params.MaxConnectedBias + 1); err == nil {
		t.Error("a bias over the limit was saved")
	}
	if err := pool.SaveDefaultFactors(PriceFactors{TimeFactor: -1}, PriceFactors{}); err == nil {
		t.Error("a negative factor was saved")
	}
	if err := pool.SaveDefaultFactors(PriceFactors{}, PriceFactors{RequestFactor: math.Inf(1)}); err == nil {
		t.Error("an infinite factor was saved")
	}
	if s := savedOf(t, pool); !s.IsEmpty() {
		t.Fatalf("bad values reached the record: %+v", s)
	}
	pool.Stop()
	if err := pool.SaveLimits(1, 1); !errors.Is(err, ErrStopped) {
		t.Errorf("SaveLimits after Stop: %v, want ErrStopped", err)
	}
	if err := pool.ResetSettings(); !errors.Is(err, ErrStopped) {
		t.Errorf("ResetSettings after Stop: %v, want ErrStopped", err)
	}
}

package node

import (
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/vflux-net/vflux/clientpool"
)

// Config keys of the settings the RPC setters save, as the log names them:
// the config file key and its flag.
const (
	settingMaxClients = "MaxClients (--vflux.maxclients)"
	settingCapacity   = "Capacity (--vflux.capacity)"
	settingBias       = "ConnectedBias (--vflux.bias)"
)

// priceSettings name the default prices by RPC parameter key (priceKeys order).
var priceSettings = map[string]string{
	keyTimeFactor:        "PosPrices.Time (--vflux.price.time)",
	keyCapacityFactor:    "PosPrices.Capacity (--vflux.price.capacity)",
	keyRequestFactor:     "PosPrices.Request (--vflux.price.request)",
	keyNegTimeFactor:     "NegPrices.Time (--vflux.price.negative.time)",
	keyNegCapacityFactor: "NegPrices.Capacity (--vflux.price.negative.capacity)",
	keyNegRequestFactor:  "NegPrices.Request (--vflux.price.negative.request)",
}

// restoreSettings applies, over the configured values the pool was given, the
// settings the RPC setters saved in the pool's store (doc.go, "Settings
// changed over RPC"): they win over the config file and flags. It logs at INFO
// every saved value that differs from the configured one. With
// cfg.ResetSettings it deletes them instead and the configured values stay.
// Saved limits that this config could not take (a capacity below its minCap)
// are ignored with a warning. A failed read is an error: the node does not
// start with settings other than the operator's last choice.
func restoreSettings(pool *clientpool.ClientPool, cfg Config, lg log.Logger) error {
	if cfg.ResetSettings {
		if err := pool.ResetSettings(); err != nil {
			return fmt.Errorf("discard the settings saved over RPC: %w", err)
		}
		lg.Info("Discarded the settings saved over RPC (ResetSettings, --vflux.resetsettings): the configured values are in effect")
		return nil
	}
	saved, err := pool.SavedSettings()
	if err != nil {
		return fmt.Errorf("%w (start with --vflux.resetsettings to discard the settings saved over RPC)", err)
	}
	overrides := 0
	override := func(key string, configured, persisted any) {
		if configured != persisted {
			lg.Info("A setting saved over RPC overrides the configured value", "key", key, "configured", configured, "persisted", persisted)
			overrides++
		}
	}
	if l := saved.Limits; l != nil {
		if err := checkLimits(l.MaxCount, l.MaxCap, cfg.MinCap); err != nil {
			lg.Warn("Limits saved over RPC do not fit this config, the configured ones are in effect", "err", err)
		} else {
			override(settingMaxClients, cfg.MaxClients, l.MaxCount)
			override(settingCapacity, cfg.TotalCapacity(), l.MaxCap)
			pool.SetLimits(l.MaxCount, l.MaxCap)
		}
	}
	if b := saved.ConnectedBias; b != nil {
		override(settingBias, cfg.ConnectedBias, *b)
		pool.SetConnectedBias(*b)
	}
	if f := saved.DefaultFactors; f != nil {
		configured := pricesParams(cfg.PosPrices, cfg.NegPrices)
		persisted := pricesParams(PricesFromPool(f.Pos), PricesFromPool(f.Neg))
		for _, k := range priceKeys {
			// As text: the terminal log format shows a float with 3 decimals.
			override(priceSettings[k], fmt.Sprint(configured[k]), fmt.Sprint(persisted[k]))
		}
		pool.SetDefaultFactors(f.Pos, f.Neg)
	}
	if overrides > 0 {
		lg.Info("Settings saved over RPC are in effect; start with --vflux.resetsettings to use the configured ones", "overrides", overrides)
	}
	return nil
}

// change renders a setting's change for the log.
func change(old, new any) string {
	return fmt.Sprintf("%v -> %v", old, new)
}

// logLimitsChange, logBiasChange and logPricesChange log at INFO what an RPC
// setter changed, old -> new.
func logLimitsChange(lg log.Logger, oldCount, oldCap, count, capacity uint64) {
	lg.Info("Limits changed over RPC", "maxclients", change(oldCount, count), "capacity", change(oldCap, capacity))
}

func logBiasChange(lg log.Logger, old, new time.Duration) {
	lg.Info("Connected bias changed over RPC", "bias", change(old, new))
}

func logPricesChange(lg log.Logger, oldPos, oldNeg, pos, neg Prices) {
	before, after := pricesParams(oldPos, oldNeg), pricesParams(pos, neg)
	ctx := make([]any, 0, 2*len(priceKeys))
	for _, k := range priceKeys {
		if before[k] != after[k] {
			ctx = append(ctx, k, change(before[k], after[k]))
		}
	}
	if len(ctx) == 0 {
		ctx = append(ctx, "unchanged", true)
	}
	lg.Info("Default prices changed over RPC", ctx...)
}

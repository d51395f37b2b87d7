package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/devchain"
)

// catDev is the help category of the development chain flags.
const catDev = "DEVELOPER CHAIN"

// governNone is the --vflux.govern value that turns governing off.
const governNone = "none"

var (
	devFlag = &cli.BoolFlag{
		Name:     "dev",
		Usage:    "Run a development chain: go-ethereum's eth service with a simulated beacon, the chain kept in the datadir; p2p stays on",
		Category: catDev,
	}
	devPeriodFlag = &cli.Uint64Flag{
		Name:     "dev.period",
		Usage:    "Block period of the development chain in seconds (blocks come with or without transactions)",
		Value:    devchain.DefaultPeriod,
		Category: catDev,
	}
	governFlag = &cli.StringFlag{
		Name:     "vflux.govern",
		Usage:    "Comma separated devp2p protocols on this node that the pool governs (\"none\" = only vfx/1; default eth,snap with --dev, else none)",
		Category: catVflux,
	}
)

// devSection is the [Dev] section of the config file.
type devSection struct {
	Enabled bool   // run the development chain (--dev)
	Period  uint64 // block period in seconds (--dev.period)
}

func defaultDevSection() devSection {
	return devSection{Period: devchain.DefaultPeriod}
}

// applyDevFlags applies --dev, --dev.period and --vflux.govern. Governing
// defaults to the dev chain's eth and snap when the dev chain runs and
// neither the flag nor the config file's [Vflux] Govern said otherwise (an
// empty list in the file, or "none", is "govern nothing").
func applyDevFlags(ctx *cli.Context, cfg *fileConfig) error {
	if ctx.IsSet(devFlag.Name) {
		cfg.Dev.Enabled = ctx.Bool(devFlag.Name)
	}
	if ctx.IsSet(devPeriodFlag.Name) {
		cfg.Dev.Period = ctx.Uint64(devPeriodFlag.Name)
	}
	if cfg.Dev.Enabled && cfg.Dev.Period == 0 {
		return fmt.Errorf("dev.period must be at least 1 second")
	}
	if ctx.IsSet(governFlag.Name) {
		list, err := parseGovern(ctx.String(governFlag.Name))
		if err != nil {
			return err
		}
		cfg.Vflux.Govern = list
	}
	if cfg.Vflux.Govern == nil && cfg.Dev.Enabled {
		cfg.Vflux.Govern = []string{"eth", "snap"}
	}
	return nil
}

// parseGovern reads a --vflux.govern value: protocol names, or "none" alone
// for an empty (non-nil) list.
func parseGovern(s string) ([]string, error) {
	list := splitList(s)
	if len(list) == 0 {
		return nil, fmt.Errorf("vflux.govern is empty: list protocols (eth,snap) or say %q", governNone)
	}
	seen := make(map[string]bool)
	for _, name := range list {
		switch {
		case name == governNone && len(list) > 1:
			return nil, fmt.Errorf("vflux.govern: %q cannot be combined with protocol names", governNone)
		case strings.ContainsAny(name, " /"):
			return nil, fmt.Errorf("vflux.govern: %q is not a protocol name (give names without versions, e.g. eth)", name)
		case seen[name]:
			return nil, fmt.Errorf("vflux.govern: %q is listed twice", name)
		}
		seen[name] = true
	}
	if list[0] == governNone {
		return []string{}, nil
	}
	return list, nil
}

package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/ethereum/go-ethereum/log"
	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
)

var (
	logFormatFlag = &cli.StringFlag{
		Name: "log.format", Usage: "Log format: terminal, logfmt or json (one JSON object per line)", Value: "terminal", Category: catLog,
	}
	vmoduleFlag = &cli.StringFlag{
		Name: "vmodule", Usage: "Per-module verbosity: comma-separated <pattern>=<level> (e.g. clientpool/*=5,p2p=4)", Category: catLog,
	}
)

// logConfig is how the command logs: go-ethereum's handlers, filtered by
// verbosity and --vmodule as geth does.
type logConfig struct {
	Verbosity int
	Format    string // terminal (default), logfmt, json
	Vmodule   string
}

// logConfigFromFlags reads the logging flags.
func logConfigFromFlags(ctx *cli.Context) logConfig {
	return logConfig{
		Verbosity: ctx.Int(verbosityFlag.Name),
		Format:    ctx.String(logFormatFlag.Name),
		Vmodule:   ctx.String(vmoduleFlag.Name),
	}
}

// applyLogConfig installs the logger described by c, writing to w. Colour is
// used for the terminal format on a terminal only.
func applyLogConfig(w io.Writer, c logConfig) error {
	if c.Verbosity < 0 || c.Verbosity > 5 {
		return fmt.Errorf("verbosity %d out of range: use 0 (silent) to 5 (trace)", c.Verbosity)
	}
	var handler slog.Handler
	switch c.Format {
	case "", "terminal":
		useColor := false
		if f, ok := w.(*os.File); ok {
			useColor = isatty.IsTerminal(f.Fd()) && os.Getenv("TERM") != "dumb"
		}
		handler = log.NewTerminalHandler(w, useColor)
	case "logfmt":
		handler = log.LogfmtHandler(w)
	case "json":
		handler = log.JSONHandler(w)
	default:
		return fmt.Errorf("--log.format %q is not a log format: use terminal, logfmt or json", c.Format)
	}
	glog := log.NewGlogHandler(handler)
	glog.Verbosity(log.FromLegacyLevel(c.Verbosity))
	if err := glog.Vmodule(c.Vmodule); err != nil {
		return fmt.Errorf("--vmodule %q: %v (write <pattern>=<level>,..., e.g. clientpool/*=5)", c.Vmodule, err)
	}
	if c.Verbosity == 0 && c.Vmodule == "" {
		log.SetDefault(log.NewLogger(log.DiscardHandler()))
		return nil
	}
	log.SetDefault(log.NewLogger(glog))
	return nil
}

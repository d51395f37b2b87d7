package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// version is the version reported in the node name and by --version.
const version = "0.1.0"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "Fatal:", err)
		code := 1
		if ec, ok := err.(cli.ExitCoder); ok {
			code = ec.ExitCode() // vflux connect's documented exit codes
		}
		os.Exit(code)
	}
}

// appHooks lets each command file add its command (and the node action) to
// the app, keeping main.go free of their dependencies.
var appHooks []func(*cli.App)

func newApp() *cli.App {
	// go-ethereum's internal/flags (imported through the node package) swaps
	// in a multi-line flag format that does not fit urfave/cli's category
	// template; use one line per flag.
	cli.FlagStringer = flagString
	app := &cli.App{
		Name:    "vflux",
		Usage:   "serve and query vflux capacity on go-ethereum p2p nodes",
		Version: version,
		Flags:   nodeFlags,
		Commands: []*cli.Command{
			dumpConfigCommand,
			flagTableCommand,
		},
		// Exit codes come from main: print the error there once, not twice.
		ExitErrHandler:         func(*cli.Context, error) {},
		UseShortOptionHandling: false,
		Before: func(ctx *cli.Context) error {
			return setupLogging(ctx, os.Stderr)
		},
		OnUsageError: func(ctx *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w (see 'vflux --help')", usageError(nodeFlags, err))
		},
	}
	for _, hook := range appHooks {
		hook(app)
	}
	setUsageErrors(app.Commands)
	return app
}

// setupLogging installs go-ethereum's log handler as --verbosity,
// --log.format and --vmodule say (the node command applies the config file's
// [Log] section on top, see runNode).
func setupLogging(ctx *cli.Context, w io.Writer) error {
	return applyLogConfig(w, logConfigFromFlags(ctx))
}

// setLogVerbosity changes the verbosity, keeping the format and vmodule of
// the flags.
func setLogVerbosity(ctx *cli.Context, w io.Writer, verbosity int) {
	c := logConfigFromFlags(ctx)
	c.Verbosity = verbosity
	applyLogConfig(w, c) // the flags were checked by setupLogging
}

var dumpConfigCommand = &cli.Command{
	Name:      "dumpconfig",
	Usage:     "Print the effective configuration (defaults, --config file and flags) as TOML",
	ArgsUsage: "",
	Flags:     nodeFlags,
	Action: func(ctx *cli.Context) error {
		cfg, err := makeConfig(ctx)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := dumpConfig(&buf, cfg); err != nil {
			return fmt.Errorf("encode config: %w", err)
		}
		_, err = ctx.App.Writer.Write(buf.Bytes())
		return err
	},
}

var flagTableCommand = &cli.Command{
	Name:   "flagtable",
	Usage:  "Print the node flags as a Markdown table (for the README)",
	Hidden: true,
	Action: func(ctx *cli.Context) error {
		fmt.Fprint(ctx.App.Writer, flagTable(nodeFlags))
		return nil
	},
}

// flagString renders a flag for --help as "--name value<TAB>usage (default: x)".
func flagString(f cli.Flag) string {
	df, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return ""
	}
	name := "--" + f.Names()[0]
	if len(f.Names()) > 1 {
		name += ", -" + f.Names()[1]
	}
	if df.TakesValue() {
		name += " value"
	}
	usage := df.GetUsage()
	def := df.GetDefaultText()
	if def == "" && df.TakesValue() {
		def = df.GetValue()
	}
	if def != "" && def != `""` {
		usage += " (default: " + def + ")"
	}
	return name + "\t" + usage
}

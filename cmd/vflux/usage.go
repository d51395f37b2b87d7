package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
)

// checkArgs returns an error unless the command got exactly n arguments. A
// flag placed after the arguments is the usual cause of a wrong count (Go's
// flag parsing stops at the first argument), so that error says where flags
// go, with the command line rewritten in the right order.
func checkArgs(ctx *cli.Context, n int, what string) error {
	if err := flagsAfterArgs(ctx); err != nil {
		return err
	}
	if ctx.NArg() != n {
		name := commandPath(ctx)
		return fmt.Errorf("%s takes %s (got %d arguments; see '%s --help')", name, what, ctx.NArg(), name)
	}
	return nil
}

// flagsAfterArgs finds arguments that look like flags ("--x", "-x", not a
// negative number) and returns an error showing them before the arguments.
func flagsAfterArgs(ctx *cli.Context) error {
	args := ctx.Args().Slice()
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, isFlag := flagName(a)
		if !isFlag {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		if !strings.Contains(a, "=") && takesValue(ctx.Command, name) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if len(flags) == 0 {
		return nil
	}
	line := append(append([]string{commandPath(ctx)}, flags...), rest...)
	return fmt.Errorf("flags go before arguments: %s", strings.Join(line, " "))
}

// commandPath is the command line up to the running command ("vflux balance
// add"). It is built from the context lineage, not Command.HelpName, which
// urfave/cli extends on every run of the (package-level) commands.
func commandPath(ctx *cli.Context) string {
	var names []string
	for _, c := range ctx.Lineage() {
		if c.Command == nil || c.Command.Name == "" || c.Command.Name == ctx.App.Name {
			continue
		}
		if len(names) > 0 && names[0] == c.Command.Name {
			continue
		}
		names = append([]string{c.Command.Name}, names...)
	}
	return strings.Join(append([]string{ctx.App.Name}, names...), " ")
}

// flagName reports whether a looks like a flag and returns its name.
func flagName(a string) (string, bool) {
	if !strings.HasPrefix(a, "-") || len(a) < 2 || a == "--" {
		return "", false
	}
	name := strings.TrimLeft(a, "-")
	if name == "" || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') {
		return "", false // "-500" is a negative amount
	}
	name, _, _ = strings.Cut(name, "=")
	return name, true
}

func takesValue(cmd *cli.Command, name string) bool {
	if cmd == nil {
		return false
	}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				df, ok := f.(cli.DocGenerationFlag)
				return ok && df.TakesValue()
			}
		}
	}
	return false
}

// invalidValueRe matches the flag package's error for a value it cannot parse.
var invalidValueRe = regexp.MustCompile(`^invalid value "(.*)" for flag -(\S+): `)

// usageError rewrites urfave/cli's flag parse errors ("invalid value "5" for
// flag -vflux.bias: parse error") to say what the flag takes.
func usageError(flags []cli.Flag, err error) error {
	m := invalidValueRe.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	value, name := m[1], m[2]
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			var takes string
			switch f.(type) {
			case *cli.DurationFlag:
				takes = "a duration like 90s, 3m or 1h30m"
			case *cli.IntFlag, *cli.Int64Flag:
				takes = "a whole number"
			case *cli.UintFlag, *cli.Uint64Flag:
				takes = "a whole number >= 0"
			case *cli.Float64Flag:
				takes = "a number like 1, 0.5 or 1e9"
			case *cli.BoolFlag:
				takes = "true or false (--" + name + "=false), or nothing"
			default:
				return err
			}
			return fmt.Errorf("--%s takes %s, got %q", name, takes, value)
		}
	}
	return err
}

// setUsageErrors installs usageError on cmd and its subcommands.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		flags := c.Flags
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
			return usageError(flags, err)
		}
		setUsageErrors(c.Subcommands)
	}
}

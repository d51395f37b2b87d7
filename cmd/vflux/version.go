package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// gitCommit can be set at link time where Go's VCS stamping is not available
// (a git worktree, -buildvcs=false):
//
//	go build -ldflags "-X main.gitCommit=$(git rev-parse HEAD)" ./cmd/vflux
var gitCommit string

var versionCommand = &cli.Command{
	Name:  "version",
	Usage: "Print the version, the module version, the VCS commit and the Go version",
	Action: func(ctx *cli.Context) error {
		if err := checkArgs(ctx, 0, "no arguments"); err != nil {
			return err
		}
		bi, _ := debug.ReadBuildInfo()
		printVersion(ctx.App.Writer, bi)
		return nil
	},
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) {
		app.Commands = append(app.Commands, versionCommand)
	})
}

// printVersion writes what the binary was built from. bi may be nil (a binary
// without build information).
func printVersion(w io.Writer, bi *debug.BuildInfo) {
	module, commit, modified, when := "unknown", "unknown", "", ""
	goVersion := runtime.Version()
	if bi != nil {
		module = bi.Main.Path + " " + bi.Main.Version
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (with uncommitted changes)"
				}
			case "vcs.time":
				when = " of " + s.Value
			}
		}
	}
	if commit == "unknown" && gitCommit != "" {
		commit = gitCommit
	}
	if commit == "unknown" {
		modified = " (built without VCS stamping, e.g. -buildvcs=false or outside a git checkout)"
	}
	fmt.Fprintf(w, "vflux %s\n", version)
	fmt.Fprintf(w, "module %s\n", module)
	fmt.Fprintf(w, "commit %s%s%s\n", commit, when, modified)
	fmt.Fprintf(w, "go %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
}

package main

import (
	"bytes"
	"strings"
	"testing"
)

// runApp runs the command line in-process and returns its error.
func runApp(args ...string) error {
	app := newApp()
	app.Writer, app.ErrWriter = new(bytes.Buffer), new(bytes.Buffer)
	return app.Run(append([]string{"vflux"}, args...))
}

func TestUsageErrorsSayWhatToType(t *testing.T) {
	const id = "0x0202020202020202020202020202020202020202020202020202020202020202"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--vflux.bias", "5"}, `--vflux.bias takes a duration like 90s, 3m or 1h30m, got "5"`},
		{[]string{"--vflux.maxclients", "-1"}, `--vflux.maxclients takes a whole number >= 0, got "-1"`},
		{[]string{"--vflux.price.time", "cheap"}, `--vflux.price.time takes a number like 1, 0.5 or 1e9, got "cheap"`},
		{[]string{"clients", "--max", "x"}, `--max takes a whole number, got "x"`},
		{[]string{"balance", "add", id, "5", "--datadir", "/nonexistent"}, "flags go before arguments: vflux balance add --datadir /nonexistent " + id + " 5"},
		{[]string{"balance", "add", id, "5", "--datadir=/nonexistent", "--clamp"}, "flags go before arguments: vflux balance add --datadir=/nonexistent --clamp " + id + " 5"},
		{[]string{"balance", "get", id, "-rpc", "/x.ipc"}, "flags go before arguments: vflux balance get -rpc /x.ipc " + id},
		// A negative amount is an argument, not a misplaced flag.
		{[]string{"balance", "add", "--datadir", "/nonexistent", id, "-5e3"}, "no node running at /nonexistent"},
		{[]string{"balance", "add", "--datadir", "/nonexistent", id, "-five"}, "flags go before arguments"},
		{[]string{"balance", "get", "--datadir", "/nonexistent", "enr:-IS4QHCYrYZbAKW"}, "not a valid ENR or enode URL"},
		{[]string{"balance", "add", "--datadir", "/nonexistent", id, "1.5"}, `token amount "1.5" is not a whole number: write a whole number of tokens like 1000000, 1e12`},
		{[]string{"attach", "--exec", "1", "/nonexistent/dir"}, "no node at /nonexistent/dir"},
		{[]string{"query", "enr:-IS4QHCYrYZbAKW", "--timeout", "5s"}, "flags go before arguments: vflux query --timeout 5s enr:-IS4QHCYrYZbAKW"},
	}
	for _, tt := range tests {
		err := runApp(tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("vflux %s: %v\nwant an error containing %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// readmeFlagTable returns the README's "All node flags" table.
func readmeFlagTable(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "| flag | default | meaning |")
	if i < 0 {
		t.Fatal("README has no flag table")
	}
	j := strings.Index(s[i:], "\n\n")
	if j < 0 {
		j = len(s) - i
	}
	return s[i:i+j] + "\n"
}

func TestTheREADMEFlagTableMatchesVfluxHelp(t *testing.T) {
	table := readmeFlagTable(t)
	if want := flagTable(nodeFlags); table != want {
		t.Errorf("README's flag table differs from the flags; replace it with the output of 'vflux flagtable':\n%s", want)
	}

	// The same flags, with the same defaults, as `vflux --help` lists.
	app := newApp()
	var help bytes.Buffer
	app.Writer = &help
	if err := app.Run([]string{"vflux", "--help"}); err != nil {
		t.Fatal(err)
	}
	helpRe := regexp.MustCompile(`(?m)^\s+--([a-z0-9.]+)(?: value)?(?:, -\w+)?\s.*$`)
	inHelp := map[string]string{}
	for _, m := range helpRe.FindAllStringSubmatch(help.String(), -1) {
		if m[1] == "help" || m[1] == "version" {
			continue // urfave/cli's own
		}
		def := ""
		if i := strings.LastIndex(m[0], "(default: "); i >= 0 && strings.HasSuffix(m[0], ")") {
			def = m[0][i+len("(default: ") : len(m[0])-1]
		}
		inHelp[m[1]] = def
	}
	rowRe := regexp.MustCompile("(?m)^\\| `--([a-z0-9.]+)` \\| (.*?) \\|")
	inREADME := map[string]string{}
	for _, m := range rowRe.FindAllStringSubmatch(table, -1) {
		inREADME[m[1]] = m[2]
	}
	if len(inHelp) < 30 {
		t.Fatalf("found only %d flags in --help:\n%s", len(inHelp), help.String())
	}
	for name, def := range inHelp {
		readmeDef, ok := inREADME[name]
		switch {
		case !ok:
			t.Errorf("--%s is in 'vflux --help' but not in the README's table", name)
		case def != "" && readmeDef != def:
			t.Errorf("--%s: default %s in --help, %s in the README", name, def, readmeDef)
		}
	}
	var extra []string
	for name := range inREADME {
		if _, ok := inHelp[name]; !ok {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("the README's table lists flags 'vflux --help' does not: %v", extra)
	}
}

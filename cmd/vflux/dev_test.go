package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestGoverningDefaultsToEthAndSnapOnlyWithTheDevChain(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		file string // [Vflux] / [Dev] lines of a config file, if any
		want []string
	}{
		{name: "no dev chain", want: nil},
		{name: "dev chain", args: []string{"--dev"}, want: []string{"eth", "snap"}},
		{name: "dev chain from the file", file: "[Dev]\nEnabled = true\n", want: []string{"eth", "snap"}},
		{name: "flag overrides", args: []string{"--dev", "--vflux.govern", "eth"}, want: []string{"eth"}},
		{name: "none", args: []string{"--dev", "--vflux.govern", "none"}, want: []string{}},
		{name: "file says none", args: []string{"--dev"}, file: "[Vflux]\nGovern = []\n", want: []string{}},
		{name: "file lists", args: []string{"--dev"}, file: "[Vflux]\nGovern = [\"snap\"]\n", want: []string{"snap"}},
		{name: "without dev", args: []string{"--vflux.govern", "myproto, eth"}, want: []string{"myproto", "eth"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, "vflux.toml", tc.file)}, args...)
			}
			fc, _, err := parseArgs(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fc.Vflux.Govern, tc.want) {
				t.Errorf("Govern = %#v, want %#v", fc.Vflux.Govern, tc.want)
			}
		})
	}
}

func TestBadGovernAndDevValuesAreClearErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--vflux.govern", "none,eth"}, "cannot be combined"},
		{[]string{"--vflux.govern", "eth/69"}, "not a protocol name"},
		{[]string{"--vflux.govern", "eth,eth"}, "listed twice"},
		{[]string{"--vflux.govern", " , "}, "is empty"},
		{[]string{"--dev", "--dev.period", "0"}, "at least 1 second"},
	} {
		_, _, err := parseArgs(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}

func TestDumpconfigWritesTheDevSectionAndTheEffectiveGovernList(t *testing.T) {
	fc, _, err := parseArgs(t, "--dev", "--dev.period", "5")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dumpConfig(&buf, fc); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"[Dev]", "Enabled = true", "Period = 5", `Govern = ["eth", "snap"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("dumpconfig lacks %q:\n%s", want, out)
		}
	}
	// Read back, it is the same config.
	back, _, err := parseArgs(t, "--config", writeFile(t, "vflux.toml", out))
	if err != nil {
		t.Fatal(err)
	}
	if !back.Dev.Enabled || back.Dev.Period != 5 || !reflect.DeepEqual(back.Vflux.Govern, []string{"eth", "snap"}) {
		t.Errorf("read back: dev %+v, govern %v", back.Dev, back.Vflux.Govern)
	}
}

package client_test

import (
	"strings"
	"testing"

	"github.com/vflux-net/vflux/client"
)

func TestABadNodeURLSaysWhatItShouldLookLike(t *testing.T) {
	for in, hint := range map[string]string{
		"enr:-abc":                     "copy the whole enr:-...",
		"enode://1234@127.0.0.1:30303": "enode://<128 hex digits>@<ip>:<tcp port>",
		"nonsense":                     "starts with neither enr: nor enode://",
	} {
		_, err := client.ParseNodeURL(in)
		if err == nil || !strings.Contains(err.Error(), "not a valid ENR or enode URL") || !strings.Contains(err.Error(), hint) {
			t.Errorf("ParseNodeURL(%q) = %v, want 'not a valid ENR or enode URL' and %q", in, err, hint)
		}
	}
}

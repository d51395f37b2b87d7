package p2ptest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// recorder is a testing.TB whose Fatal stops only the calling goroutine and
// records the message, so tests can check what a failing harness reports.
type recorder struct {
	testing.TB
	msg chan string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...interface{}) {
	r.msg <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...interface{}) {
	r.msg <- fmt.Sprint(args...)
	runtime.Goexit()
}

// failure runs fn against a recorder and returns the failure it reported.
func failure(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t, msg: make(chan string, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	select {
	case m := <-r.msg:
		return m
	default:
		t.Fatal("the harness did not report a failure")
		return ""
	}
}

func TestFailuresSayWhatArrivedInstead(t *testing.T) {
	tests := []struct {
		name string
		fn   func(tb testing.TB)
		want []string
	}{
		{"a wrong code names both codes and the payload", func(tb testing.TB) {
			m := NewMsgTester(tb, echoProtocol, enode.ID{1})
			m.Send(0, ping{1})
			m.Expect(0, ping{2})
		}, []string{"got message 0x1", "c102", "want 0x0"}},
		{"a wrong value shows both values", func(tb testing.TB) {
			m := NewMsgTester(tb, echoProtocol, enode.ID{1})
			m.Send(0, ping{1})
			m.Expect(1, ping{3})
		}, []string{"got  {N:2}", "want {N:3}"}},
		{"silence reports the deadline and the protocol's state", func(tb testing.TB) {
			m := NewMsgTester(tb, echoProtocol, enode.ID{1})
			m.Timeout = 50 * time.Millisecond
			m.Read()
		}, []string{"no message within 50ms", "Run still running"}},
		{"a wrong disconnect reason names both", func(tb testing.TB) {
			m := NewMsgTester(tb, echoProtocol, enode.ID{1})
			m.Send(5, ping{1})
			m.ExpectDisconnect(p2p.DiscProtocolError)
		}, []string{"useless peer", "breach of protocol"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := failure(t, tt.fn)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("failure %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestAWatcherTimeoutListsTheEventsItSaw(t *testing.T) {
	srvs := StartServers(t, 2, func(i int) ServerConfig {
		return ServerConfig{Protocols: []p2p.Protocol{echoProtocol}, NoDiscovery: true}
	})
	w := Watch(t, srvs[0])
	Connect(t, srvs[0], srvs[1], 10*time.Second)
	if evs := w.Events(); len(evs) != 1 || evs[0].Type != p2p.PeerEventTypeAdd {
		t.Fatalf("events %+v, want one add", evs)
	}
	msg := failure(t, func(tb testing.TB) {
		w.t = tb
		w.Wait(p2p.PeerEventTypeDrop, srvs[1].Self().ID(), 50*time.Millisecond)
	})
	w.t = t
	if !strings.Contains(msg, "no drop event") || !strings.Contains(msg, "[add ") {
		t.Fatalf("failure %q does not list the add event it saw", msg)
	}
	srvs[0].RemovePeer(srvs[1].Self())
	w.WaitAllDropped(10 * time.Second)
}

package p2ptest

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
)

// DefaultTimeout bounds every wait of MsgTester unless Timeout is changed. It is
// generous because tests run under -race on two shared cores; a passing test
// never waits for it.
const DefaultTimeout = 5 * time.Second

// MsgTester runs a protocol's Run against a scripted remote over p2p.MsgPipe.
// The test plays the remote through Send and Expect; ExpectDisconnect waits for
// Run to return. All methods must be called from the test goroutine.
type MsgTester struct {
	t       testing.TB
	remote  *p2p.MsgPipeRW // the test's end
	local   *p2p.MsgPipeRW // Run's end
	peer    *p2p.Peer
	runDone chan struct{}
	runErr  error // valid once runDone is closed

	// Timeout bounds each Send, Expect and ExpectDisconnect.
	Timeout time.Duration
}

// NewMsgTester starts proto.Run for a peer with the given ID over a message pipe
// and returns the tester playing the remote side. The pipe is closed and Run
// waited for (with a deadline) at cleanup.
func NewMsgTester(t testing.TB, proto p2p.Protocol, id enode.ID) *MsgTester {
	t.Helper()
	local, remote := p2p.MsgPipe()
	caps := []p2p.Cap{{Name: proto.Name, Version: proto.Version}}
	m := &MsgTester{
		t:       t,
		remote:  remote,
		local:   local,
		peer:    p2p.NewPeerPipe(id, "p2ptest", caps, local),
		runDone: make(chan struct{}),
		Timeout: DefaultTimeout,
	}
	go func() {
		m.runErr = proto.Run(m.peer, local)
		close(m.runDone)
	}()
	t.Cleanup(func() {
		local.Close()
		select {
		case <-m.runDone:
		case <-time.After(m.Timeout):
			t.Errorf("p2ptest: protocol Run did not return within %v after the pipe was closed", m.Timeout)
		}
	})
	return m
}

// Peer is the p2p.Peer passed to Run.
func (m *MsgTester) Peer() *p2p.Peer { return m.peer }

// Send encodes val and sends it as message code, failing the test if Run does
// not take it within the deadline.
func (m *MsgTester) Send(code uint64, val interface{}) {
	m.t.Helper()
	enc, err := rlp.EncodeToBytes(val)
	if err != nil {
		m.t.Fatalf("p2ptest: can't encode message %#x (%T): %v", code, val, err)
	}
	m.SendRaw(code, enc)
}

// SendRaw sends payload as message code without encoding it, so tests can send
// garbage.
func (m *MsgTester) SendRaw(code uint64, payload []byte) {
	m.t.Helper()
	errc := make(chan error, 1)
	go func() {
		errc <- m.remote.WriteMsg(p2p.Msg{Code: code, Size: uint32(len(payload)), Payload: bytes.NewReader(payload)})
	}()
	select {
	case err := <-errc:
		if err != nil {
			m.t.Fatalf("p2ptest: send message %#x: %v (%s)", code, err, m.runState())
		}
	case <-time.After(m.Timeout):
		m.t.Fatalf("p2ptest: protocol did not read message %#x within %v (%s)", code, m.Timeout, m.runState())
	}
}

// Expect reads the next message and fails the test unless it has the given code
// and its payload decodes to a value deeply equal to want (want's type is the
// type decoded). It returns the decoded value.
func (m *MsgTester) Expect(code uint64, want interface{}) interface{} {
	m.t.Helper()
	got := reflect.New(reflect.TypeOf(want))
	m.ExpectDecode(code, got.Interface())
	if !reflect.DeepEqual(got.Elem().Interface(), want) {
		m.t.Fatalf("p2ptest: message %#x:\n got  %+v\n want %+v", code, got.Elem().Interface(), want)
	}
	return got.Elem().Interface()
}

// ExpectDecode reads the next message, fails the test unless it has the given
// code, and decodes its payload into into (a pointer), for tests that check only
// some fields.
func (m *MsgTester) ExpectDecode(code uint64, into interface{}) {
	m.t.Helper()
	msg, payload := m.read()
	if msg.Code != code {
		m.t.Fatalf("p2ptest: got message %#x (%d bytes: %x), want %#x", msg.Code, len(payload), trim(payload), code)
	}
	if err := rlp.DecodeBytes(payload, into); err != nil {
		m.t.Fatalf("p2ptest: message %#x does not decode into %T: %v (payload %x)", code, into, err, trim(payload))
	}
}

// Read returns the next message's code and payload, whatever it is, failing
// the test if none arrives within the deadline.
func (m *MsgTester) Read() (uint64, []byte) {
	m.t.Helper()
	msg, payload := m.read()
	return msg.Code, payload
}

// ExpectDisconnect waits for Run to return and fails the test unless it
// returned exactly reason. Messages that arrive meanwhile are logged and
// discarded so the protocol can't block on writing them.
func (m *MsgTester) ExpectDisconnect(reason p2p.DiscReason) {
	m.t.Helper()
	deadline := time.NewTimer(m.Timeout)
	defer deadline.Stop()
	msgs := make(chan p2p.Msg)
	go func() {
		for {
			msg, err := m.remote.ReadMsg()
			if err != nil {
				return
			}
			select {
			case msgs <- msg:
			case <-m.runDone:
				msg.Discard()
				return
			}
		}
	}()
	for {
		select {
		case msg := <-msgs:
			payload, _ := io.ReadAll(msg.Payload)
			m.t.Logf("p2ptest: discarded message %#x (%x) while waiting for disconnect", msg.Code, trim(payload))
		case <-m.runDone:
			if m.runErr != reason {
				m.t.Fatalf("p2ptest: Run returned %v (%T), want disconnect reason %q", m.runErr, m.runErr, reason)
			}
			return
		case <-deadline.C:
			m.t.Fatalf("p2ptest: Run did not return within %v, want disconnect reason %q", m.Timeout, reason)
		}
	}
}

// RunErr returns Run's result and true once Run has returned.
func (m *MsgTester) RunErr() (error, bool) {
	select {
	case <-m.runDone:
		return m.runErr, true
	default:
		return nil, false
	}
}

// Done is closed when Run has returned.
func (m *MsgTester) Done() <-chan struct{} { return m.runDone }

// Close closes the pipe, as a remote that hangs up.
func (m *MsgTester) Close() { m.remote.Close() }

func (m *MsgTester) read() (p2p.Msg, []byte) {
	m.t.Helper()
	type result struct {
		msg     p2p.Msg
		payload []byte
		err     error
	}
	resc := make(chan result, 1)
	go func() {
		msg, err := m.remote.ReadMsg()
		if err != nil {
			resc <- result{err: err}
			return
		}
		payload, err := io.ReadAll(msg.Payload)
		resc <- result{msg, payload, err}
	}()
	select {
	case r := <-resc:
		if r.err != nil {
			m.t.Fatalf("p2ptest: read message: %v (%s)", r.err, m.runState())
		}
		return r.msg, r.payload
	case <-time.After(m.Timeout):
		m.t.Fatalf("p2ptest: no message within %v (%s)", m.Timeout, m.runState())
		return p2p.Msg{}, nil
	}
}

func (m *MsgTester) runState() string {
	if err, done := m.RunErr(); done {
		return fmt.Sprintf("Run returned %v", err)
	}
	return "Run still running"
}

// trim shortens a payload for failure messages.
func trim(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

package client_test

import (
	"context"
	"testing"

	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/protocol"
)

func TestConnReportsAPartialGrantAsAskedAndGranted(t *testing.T) {
	s := startServer(t, serverConfig(2), nil) // total capacity 20000
	c := newClient(t, client.Config{})
	s.addBalance(t, c.Self().ID(), 1e12)
	ctx, cancel := context.WithTimeout(context.Background(), netTimeout)
	defer cancel()
	conn, err := c.Connect(ctx, s.node(), 50000)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for {
		select {
		case ev := <-conn.Events():
			switch ev.Kind {
			case client.Granted:
				if ev.Asked != 50000 || ev.Capacity != 20000 || ev.Code != protocol.CapOK {
					t.Fatalf("granted %+v, want asked 50000, granted 20000 (CapOK)", ev)
				}
				return
			case client.Disconnected:
				t.Fatalf("disconnected: %v", ev.Err)
			}
		case <-ctx.Done():
			t.Fatal("no answer to the capacity request")
		}
	}
}

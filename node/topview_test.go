package node

import (
	"reflect"
	"testing"
	"time"
)

func TestTheLiveViewGetsEveryServerFieldAndOnlyConnectedClients(t *testing.T) {
	info := ServerInfo{MinCap: 1, MaxCount: 2, MaxCap: 3, MaxInactive: 4, ActiveCount: 5, ActiveCap: 6, InactiveCount: 7, ConnectedCount: 8, TotalTokens: 9}
	srv := info.TopServer()
	v := reflect.ValueOf(srv)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("topview.Server.%s is not filled from ServerInfo", v.Type().Field(i).Name)
		}
	}
	if srv.MaxInactive != 4 || srv.InactiveCount != 7 || srv.TotalTokens != 9 {
		t.Errorf("fields mixed up: %+v", srv)
	}

	clients := TopClients(map[string]ClientInfo{
		"aa": {Connected: true, Capacity: 2000, PosBalance: 10, NegBalance: 20, ConnectionTime: 1.5},
		"bb": {Connected: false, PosBalance: 30}, // left between the listing and the reading
	})
	if len(clients) != 1 {
		t.Fatalf("clients %+v, want only the connected one", clients)
	}
	c := clients[0]
	if c.ID != "aa" || c.Capacity != 2000 || c.PosBalance != 10 || c.NegBalance != 20 || c.Connected != 1500*time.Millisecond || c.SpendKnown {
		t.Errorf("client %+v", c)
	}
}

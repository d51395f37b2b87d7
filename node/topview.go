package node

import (
	"time"

	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/topview"
)

// TopServer is the server part of the live view (package topview), from
// vflux_serverInfo's answer. `vflux top` converts the RPC answer with it; the
// devnet can convert the in-process API's, so both draw the same numbers.
func (i *ServerInfo) TopServer() topview.Server {
	return topview.Server{
		MinCap:         i.MinCap,
		MaxCount:       i.MaxCount,
		MaxCap:         i.MaxCap,
		MaxInactive:    i.MaxInactive,
		ActiveCount:    i.ActiveCount,
		ActiveCap:      i.ActiveCap,
		InactiveCount:  i.InactiveCount,
		ConnectedCount: i.ConnectedCount,
		TotalTokens:    i.TotalTokens,
	}
}

// TopClients is the client list of the live view, from
// vflux_connectedClientInfo's answer (keyed by node ID). Clients that left
// between the listing and the reading are skipped. The spend rates are left
// to a topview.SpendMeter.
func TopClients(infos map[string]ClientInfo) []topview.Client {
	clients := make([]topview.Client, 0, len(infos))
	for id, ci := range infos {
		if !ci.Connected {
			continue
		}
		clients = append(clients, topview.Client{
			ID:         id,
			Capacity:   ci.Capacity,
			PosBalance: ci.PosBalance,
			NegBalance: ci.NegBalance,
			Connected:  time.Duration(ci.ConnectionTime * float64(time.Second)),
		})
	}
	return clients
}

// topEvent is a pool event as the devnet's live view shows it, named as
// vflux_subscribe("events") names it for `vflux top`, at the wall-clock time
// the pool decided, with its reason and balance change.
func topEvent(ev clientpool.Event) topview.Event {
	j := eventJSON(ev)
	return topview.Event{Time: ev.Wall.Local(), Type: j.Type, ID: j.ID, Capacity: j.Capacity, Reason: j.Reason, Balance: j.Balance}
}

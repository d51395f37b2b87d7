package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vflux-net/vflux/clientpool"
	"github.com/vflux-net/vflux/topview"
)

// watch keeps the live view: it adds every pool event to the event log and
// draws a frame every Progress, and once more when ctx ends.
func (d *Devnet) watch(ctx context.Context, events <-chan clientpool.Event, subErr <-chan error) {
	tick := time.NewTicker(d.cfg.Progress)
	defer tick.Stop()
	for {
		select {
		case ev := <-events:
			d.addEvent(ev)
		case err := <-subErr:
			subErr = nil
			if err == nil {
				err = errors.New("closed by the pool")
			}
			d.eventsNote = fmt.Sprintf("event subscription ended: %v", err)
		case <-tick.C:
			d.drawFrame()
		case <-ctx.Done():
			d.drawFrame()
			return
		}
	}
}

// addEvent logs a pool event with the client's name and remembers the
// client's departure.
func (d *Devnet) addEvent(ev clientpool.Event) {
	e := topEvent(ev)
	c := d.byID[e.ID]
	if c != nil {
		e.Name = c.name
		if ev.Type == clientpool.EventDisconnected {
			c.left = e
		}
	}
	d.events.Add(e)
}

// drawFrame writes one frame of the live view: the same view `vflux top`
// draws, from the same API answers, with the clients' names, their workload
// rates and the offline clients below.
func (d *Devnet) drawFrame() {
	s, err := d.snapshot()
	var frame string
	if err != nil {
		frame = fmt.Sprintf("devnet: %v\n", err)
	} else {
		frame = topview.Render(s) + d.offline(s.Clients)
	}
	if d.cfg.Redraw {
		frame = d.preamble + frame
	}
	io.WriteString(d.out, topview.Framed(frame, d.cfg.Redraw, d.frames == 0))
	d.frames++
}

// snapshot reads the server's load and clients through the RPC API's code
// path and adds what only the devnet knows: names and workload rates.
func (d *Devnet) snapshot() (topview.Snapshot, error) {
	api := &API{s: d.svc}
	info, err := api.ServerInfo()
	if err != nil {
		return topview.Snapshot{}, err
	}
	infos, err := api.ConnectedClientInfo(maxIDsPerCall)
	if err != nil {
		return topview.Snapshot{}, err
	}
	clients := TopClients(infos)
	d.spend.Update(clients)
	rates := make(map[string]float64, len(d.clients))
	for _, c := range d.clients {
		rates[c.id.String()] = c.servedRate()
	}
	for i := range clients {
		if c := d.byID[clients[i].ID]; c != nil {
			clients[i].Name = c.name
			clients[i].Served = rates[clients[i].ID]
		}
	}
	s := topview.Snapshot{
		Source:     "devnet",
		Time:       time.Now(),
		Server:     info.TopServer(),
		Clients:    clients,
		Events:     d.events.Events(),
		EventsNote: d.eventsNote,
	}
	if w := d.cfg.Workload; w != nil {
		s.ServedHeader = strings.ToUpper(w.Name()) + " KIB/S"
	}
	return s, nil
}

// offline lists the devnet's clients that are not connected (they dial again
// after Redial), with when and why each left, was turned away as it dialled,
// or could not dial.
func (d *Devnet) offline(connected []topview.Client) string {
	on := make(map[string]bool, len(connected))
	for _, c := range connected {
		on[c.ID] = true
	}
	var b strings.Builder
	for _, c := range d.clients {
		if on[c.id.String()] {
			continue
		}
		if b.Len() == 0 {
			fmt.Fprintf(&b, "\noffline  dialling again %v after they left or failed\n", d.cfg.Redial)
		}
		line := fmt.Sprintf("  %s  %-*s  ", topview.ShortID(c.id.String()), d.nameWidth(), c.name)
		failed := c.dialFailed.Load()
		switch {
		case failed != nil && failed.started.After(c.left.Time):
			// The pool never saw the last dial.
			line += "dial failed " + failed.at.Format("15:04:05") + ": " + failed.err.Error()
		case failed != nil:
			// The pool took the last dial in and let it go: its reason
			// says more than the transport's error.
			why := c.left.Reason
			if why == "" {
				why = failed.err.Error()
			}
			line += "turned away " + c.left.Time.Format("15:04:05") + ": " + why
		case c.left.Time.IsZero():
			line += "not connected yet"
		case c.left.Reason != "":
			line += "left " + c.left.Time.Format("15:04:05") + ": " + c.left.Reason
		default:
			line += "left " + c.left.Time.Format("15:04:05")
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// nameWidth is the length of the longest client name.
func (d *Devnet) nameWidth() int {
	w := 0
	for _, c := range d.clients {
		w = max(w, len(c.name))
	}
	return w
}

// servedRate is the client's workload bytes served per second since the
// previous call (since the devnet started at the first), in KiB/s.
func (c *devClient) servedRate() float64 {
	now, served := time.Now(), c.served.Load()
	var rate float64
	if secs := now.Sub(c.lastFrame).Seconds(); secs > 0 {
		rate = float64(served-c.lastServed) / 1024 / secs
	}
	c.lastServed, c.lastFrame = served, now
	return rate
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/vflux"
)

var (
	serversTimeoutFlag = &cli.DurationFlag{
		Name: "timeout", Usage: "How long the whole search may take", Value: 10 * time.Second, Category: catClient,
	}
	serversLimitFlag = &cli.IntFlag{
		Name: "limit", Usage: "Stop after this many servers answered (0 = all found within --timeout)", Category: catClient,
	}
	serversJSONFlag = &cli.BoolFlag{
		Name: "json", Usage: "Print one JSON object per server (full ENR and node ID) instead of the table", Category: catClient,
	}
)

var serversCommand = &cli.Command{
	Name:      "servers",
	Usage:     "Find vflux servers through discv5 and compare what they offer",
	ArgsUsage: "[enr|enode URL ...]",
	Description: `Walks discv5 from --bootnodes, keeps the nodes whose record has the "vfx" entry,
asks each (and each server given as an argument) over TALKREQ what capacity the
--amounts would buy plus its prices and load, and prints one row per server, best
first: the most capacity for the largest amount, then the lower price per
capacity, the lower load, the larger mincap. Servers that do not answer within a
few seconds are left out. The search ends after --timeout or --limit answers.`,
	Flags: append([]cli.Flag{bootnodesFlag, amountsFlag, queryBiasFlag, serviceFlag,
		serversTimeoutFlag, serversLimitFlag, serversJSONFlag}, identityFlags...),
	Action: runServers,
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) { app.Commands = append(app.Commands, serversCommand) })
}

func runServers(ctx *cli.Context) error {
	quietLogs(ctx)
	var boot, given []*enode.Node
	for _, s := range splitList(ctx.String(bootnodesFlag.Name)) {
		n, err := enode.Parse(enode.ValidSchemes, s)
		if err != nil {
			return fmt.Errorf("invalid bootnode %q: %w", s, err)
		}
		boot = append(boot, n)
	}
	for _, s := range ctx.Args().Slice() {
		n, err := client.ParseServerNode(s)
		if err != nil {
			return err
		}
		given = append(given, n)
	}
	if len(boot)+len(given) == 0 {
		return fmt.Errorf("nothing to search: give --bootnodes (or servers as arguments)")
	}
	amounts, err := parseAmounts(ctx)
	if err != nil {
		return err
	}
	largest := amounts[0]
	for _, a := range amounts {
		if a.Cmp(largest) > 0 {
			largest = a
		}
	}
	key, _, _, err := clientKey(ctx)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{
		PrivateKey: key,
		ListenIP:   client.ListenIPFor(append(boot, given...)...),
		Bootnodes:  boot,
		Servers:    given,
		Service:    ctx.String(serviceFlag.Name),
		Amounts:    amounts,
		Budget:     largest,
		Bias:       ctx.Duration(queryBiasFlag.Name),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx.Context, ctx.Duration(serversTimeoutFlag.Name))
	defer cancel()
	// On a terminal the progress line is rewritten in place; otherwise only
	// its final state is written, once.
	start := time.Now()
	tty := isatty.IsTerminal(os.Stderr.Fd())
	var last client.Progress
	line := func(p client.Progress) string {
		return fmt.Sprintf("searching: %d servers found, %d queried, %d answered (%.1fs)",
			p.Found, p.Queried, p.Answered, time.Since(start).Seconds())
	}
	progress := func(p client.Progress) {
		last = p
		if tty {
			fmt.Fprintf(os.Stderr, "\r%s  ", line(p))
		}
	}
	progress(client.Progress{})
	offers, err := c.Survey(sctx, ctx.Int(serversLimitFlag.Name), progress)
	if tty {
		fmt.Fprintln(os.Stderr)
	} else {
		fmt.Fprintln(os.Stderr, line(last))
	}
	if err != nil {
		return fmt.Errorf("%w within %v", err, ctx.Duration(serversTimeoutFlag.Name))
	}
	if ctx.Bool(serversJSONFlag.Name) {
		return printServersJSON(ctx.App.Writer, offers)
	}
	printServersTable(ctx.App.Writer, splitList(ctx.String(amountsFlag.Name)), offers)
	return nil
}

func printServersTable(w io.Writer, amountNames []string, offers []*client.Offer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "node ID\t")
	for _, a := range amountNames {
		fmt.Fprintf(tw, "cap@%s\t", a)
	}
	fmt.Fprintln(tw, "price\tclients\tload\tmincap\taddress")
	for _, o := range offers {
		fmt.Fprintf(tw, "%x\t", o.Node.ID().Bytes()[:8])
		for _, c := range o.Capacities {
			fmt.Fprintf(tw, "%d\t", c)
		}
		price, clients, load, mincap := "?", "?", "?", "?"
		if i := o.Info; i != nil {
			price = milliTokens(i.PosFactors[1])
			clients = fmt.Sprintf("%d/%d", i.ActiveCount, i.MaxCount)
			load = fmt.Sprintf("%.0f%%", 100*o.Load())
			mincap = fmt.Sprint(i.MinCap)
		}
		addr := "?"
		if ap, ok := o.Node.TCPEndpoint(); ok {
			addr = ap.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", price, clients, load, mincap, addr)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nprice: tokens per second per 1,000,000 capacity; load: active capacity of the total")
	if len(offers) > 0 {
		fmt.Fprintf(w, "connect to the first: vflux connect %s\n", offers[0].Node)
	}
}

// milliTokens renders an "info" factor (thousandths of a token), "1e9"
// rather than "1e+09".
func milliTokens(v uint64) string {
	s := new(big.Float).Quo(new(big.Float).SetUint64(v), big.NewFloat(1000)).Text('g', 6)
	return strings.NewReplacer("e+0", "e", "e+", "e").Replace(s)
}

// serverJSON is one line of `vflux servers --json`.
type serverJSON struct {
	ID         string                 `json:"id"`
	ENR        string                 `json:"enr"`
	Enode      string                 `json:"enode"`
	Amounts    []string               `json:"amounts"`
	Capacities []uint64               `json:"capacities"`
	Info       *vflux.ServerInfoReply `json:"info,omitempty"`
	Balance    *vflux.BalanceReply    `json:"balance,omitempty"`
	RTTMillis  int64                  `json:"rttMillis"`
}

func printServersJSON(w io.Writer, offers []*client.Offer) error {
	enc := json.NewEncoder(w)
	for _, o := range offers {
		s := serverJSON{
			ID: o.Node.ID().String(), ENR: o.Node.String(), Enode: o.Node.URLv4(),
			Capacities: o.Capacities, Info: o.Info, Balance: o.Balance, RTTMillis: o.RTT.Milliseconds(),
		}
		for _, a := range o.Amounts {
			s.Amounts = append(s.Amounts, a.String())
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	return nil
}

package main

import (
	"fmt"
	"io"
	"math/big"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/client"
	vfnode "github.com/vflux-net/vflux/node"
	"github.com/vflux-net/vflux/params"
)

var (
	amountsFlag = &cli.StringFlag{
		Name: "amounts", Usage: "Comma separated token amounts to ask about (at most 16)",
		Value: "0,1e9,1e10,1e11,1e12", Category: catClient,
	}
	queryBiasFlag = &cli.DurationFlag{
		Name: "bias", Usage: "How long the capacity must be held (0 = the server's connected bias)", Category: catClient,
	}
	serviceFlag = &cli.StringFlag{
		Name: "service", Usage: "vflux service name of the client pool", Value: params.ServiceName, Category: catClient,
	}
	timeoutFlag = &cli.DurationFlag{
		Name: "timeout", Usage: "How long to wait for the server's answer", Value: params.QueryTimeout, Category: catClient,
	}
)

var queryCommand = &cli.Command{
	Name:      "query",
	Usage:     "Ask a vflux server over discv5 TALKREQ what capacity token amounts would buy",
	ArgsUsage: "<enr|enode URL>",
	Flags:     append([]cli.Flag{amountsFlag, queryBiasFlag, serviceFlag, timeoutFlag}, identityFlags...),
	Action:    runQuery,
}

func init() {
	appHooks = append(appHooks, func(app *cli.App) { app.Commands = append(app.Commands, queryCommand) })
}

func runQuery(ctx *cli.Context) error {
	quietLogs(ctx)
	if err := flagsAfterArgs(ctx); err != nil {
		return err
	}
	if ctx.NArg() != 1 {
		return fmt.Errorf("query takes one argument, the server's ENR or enode URL (got %d)", ctx.NArg())
	}
	server, err := client.ParseServerNode(ctx.Args().First())
	if err != nil {
		return err
	}
	amounts, err := parseAmounts(ctx)
	if err != nil {
		return err
	}
	key, _, _, err := clientKey(ctx)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{
		PrivateKey:   key,
		ListenIP:     client.ListenIPFor(server),
		Service:      ctx.String(serviceFlag.Name),
		Bias:         ctx.Duration(queryBiasFlag.Name),
		QueryTimeout: ctx.Duration(timeoutFlag.Name),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	offer, err := c.QueryAmounts(ctx.Context, server, amounts)
	if err != nil {
		return err
	}
	printQueryResult(ctx.App.Writer, server.URLv4(), c.Self().ID(), offer)
	return nil
}

// parseAmounts reads --amounts.
func parseAmounts(ctx *cli.Context) ([]*big.Int, error) {
	var amounts []*big.Int
	for _, s := range splitList(ctx.String(amountsFlag.Name)) {
		a, err := vfnode.ParseTokenAmount(s)
		if err != nil {
			return nil, fmt.Errorf("--amounts: %w", err)
		}
		amounts = append(amounts, a)
	}
	if len(amounts) == 0 || len(amounts) > params.MaxCapQueryAmounts {
		return nil, fmt.Errorf("--amounts: give 1 to %d amounts, got %d", params.MaxCapQueryAmounts, len(amounts))
	}
	return amounts, nil
}

func printQueryResult(w io.Writer, server string, self enode.ID, res *client.Offer) {
	fmt.Fprintf(w, "vflux server %s\n\n", server)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tokens added\tcapacity\t")
	for i, a := range res.Amounts {
		capText := fmt.Sprint(res.Capacities[i])
		if res.Capacities[i] == 0 {
			capText = "0 (not admitted)"
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", a, capText)
	}
	tw.Flush()
	if info := res.Info; info != nil {
		fmt.Fprintf(w, "\nactive clients  %d of %d, capacity %d of %d (mincap %d)\n",
			info.ActiveCount, info.MaxCount, info.ActiveCap, info.MaxCap, info.MinCap)
		fmt.Fprintf(w, "connected bias  %v\n", time.Duration(info.ConnectedBias)*time.Second)
		fmt.Fprintf(w, "prices          %s\n", describeFactors(info.PosFactors))
		fmt.Fprintf(w, "free use costs  %s (negative balance)\n", describeFactors(info.NegFactors))
		fmt.Fprintf(w, "expiration      positive %s, negative %s\n", describeTC(info.PosExpirationTC), describeTC(info.NegExpirationTC))
	}
	if bal := res.Balance; bal != nil {
		fmt.Fprintf(w, "your balance    %d tokens (negative %d) for node ID %s\n", bal.Pos, bal.Neg, self)
	} else {
		fmt.Fprintf(w, "your balance    not disclosed by this server (node ID %s)\n", self)
	}
}

// describeFactors renders "info" factors, which travel in thousandths of a token.
func describeFactors(f [3]uint64) string {
	milli := func(v uint64) string {
		return new(big.Float).Quo(new(big.Float).SetUint64(v), big.NewFloat(1000)).Text('g', 6)
	}
	return fmt.Sprintf("%s tokens/s connected, %s tokens/s per 1e6 capacity, %s tokens per request cost unit",
		milli(f[0]), milli(f[1]), milli(f[2]))
}

func describeTC(secs uint64) string {
	if secs == 0 {
		return "never"
	}
	return (time.Duration(secs) * time.Second).String()
}

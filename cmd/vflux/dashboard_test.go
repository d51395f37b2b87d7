package main

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/metrics"
)

// dashboardMetricRe finds metric names in PromQL: every metric the dashboard
// uses is a vflux one or one of go-ethereum's process metrics.
var dashboardMetricRe = regexp.MustCompile(`\b(?:vflux|system)_[a-z0-9_]+\b`)

// dashboardQueries returns every PromQL expression of dashboards/vflux.json:
// panel targets and template variable queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../dashboards/vflux.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Query string }
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboards/vflux.json: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Query)
	}
	return exprs
}

func TestEveryDashboardQueryNamesAMetricAnIdleNodeServes(t *testing.T) {
	names := map[string]bool{}
	for _, expr := range dashboardQueries(t) {
		found := dashboardMetricRe.FindAllString(expr, -1)
		if len(found) == 0 {
			t.Errorf("query %q names no vflux_ or system_ metric", expr)
		}
		for _, n := range found {
			names[n] = true
		}
	}
	if len(names) < 15 {
		t.Fatalf("only %d metric names found in the dashboard: %v", len(names), names)
	}

	n := startE2ENode(t, e2eDir(t), "--vflux.serve", "--nodiscover", "--metrics", "--metrics.port", "0")
	url := n.out.wait(t, regexp.MustCompile(`Metrics server started\s+url=(http://\S+)`), n.exited)
	// The process metrics are registered by their collector goroutine soon
	// after start; the endpoint has no notification, so poll it.
	deadline := time.Now().Add(e2eTimeout)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		body := scrape(t, url)
		var missing []string
		for name := range names {
			if !regexp.MustCompile(`(?m)^` + name + ` `).MatchString(body) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("the dashboard queries metrics the node does not serve: %v\n%s", missing, body)
		}
		<-poll.C
	}
}

func TestEveryVfluxMetricIsDocumentedInTheREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	metrics.DefaultRegistry.Each(func(name string, _ any) {
		if !strings.HasPrefix(name, "vflux") {
			return
		}
		count++
		if !regexp.MustCompile(`^vflux_[a-z0-9_]+$`).MatchString(name) {
			t.Errorf("metric %q is not snake_case under vflux_", name)
		}
		if !strings.Contains(string(readme), "| `"+name+"` |") {
			t.Errorf("metric %s has no row in the README's metrics table", name)
		}
	})
	if count < 15 {
		t.Fatalf("only %d vflux metrics registered", count)
	}
}

package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/metrics"
	"github.com/ethereum/go-ethereum/metrics/prometheus"
	gethnode "github.com/ethereum/go-ethereum/node"
	"github.com/urfave/cli/v2"
	"github.com/vflux-net/vflux/devchain"
	vfnode "github.com/vflux-net/vflux/node"
)

// metricsPath is where the Prometheus endpoint is served (geth's path).
const metricsPath = "/debug/metrics/prometheus"

func init() {
	appHooks = append(appHooks, func(app *cli.App) { app.Action = runNode })
}

// runNode is the default action: run a node until SIGINT/SIGTERM.
func runNode(ctx *cli.Context) error {
	if err := flagsAfterArgs(ctx); err != nil {
		return err
	}
	if ctx.Args().Present() {
		return fmt.Errorf("unknown command %q (see 'vflux --help')", ctx.Args().First())
	}
	cfg, err := makeConfig(ctx)
	if err != nil {
		return err
	}
	if err := applyLogConfig(os.Stderr, logConfig(cfg.Log)); err != nil { // the config file's [Log], flags over it
		return err
	}
	gc, err := gethConfig(cfg)
	if err != nil {
		return err
	}
	stack, err := gethnode.New(gc)
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	defer stack.Close()
	// The dev chain's eth and snap must be on the stack before vflux's New
	// looks for the protocols it governs.
	if cfg.Dev.Enabled {
		if _, err := devchain.Register(stack, devchain.Config{Period: cfg.Dev.Period}); err != nil {
			return err
		}
	}
	var svc *vfnode.Service
	if cfg.Vflux.Serve {
		if svc, err = vfnode.New(stack, cfg.Vflux); err != nil {
			return err
		}
		defer svc.Stop() // closes the database if the stack never started
	} else {
		log.Warn("Not serving: start with --vflux.serve to serve vflux clients")
	}
	if cfg.Metrics.Enabled {
		metrics.Enable()
		// Go runtime and process metrics (system_cpu_*, system_memory_*,
		// system_disk_*), as geth collects them.
		go metrics.CollectProcessMetrics(3 * time.Second)
		srv, err := startMetricsServer(cfg.Metrics.HTTP, cfg.Metrics.Port)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	// Signals are caught from before the start on: one that arrives as soon as
	// the addresses are logged shuts down cleanly instead of killing the process.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	if err := stack.Start(); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	self := stack.Server().Self()
	log.Info("vflux node started", "enr", self.String())
	log.Info("Node addresses", "enode", self.URLv4(), "ipc", stack.IPCEndpoint(), "listen", stack.Server().ListenAddr)

	select {
	case sig := <-sigc:
		log.Info("Got signal, shutting down", "signal", sig)
	case <-waitChan(stack):
		log.Info("Node stopped")
	}
	go func() {
		// A second signal while shutting down is an impatient operator.
		<-sigc
		log.Warn("Second signal: exiting without a clean shutdown")
		os.Exit(1)
	}()
	if err := stack.Close(); err != nil && !errors.Is(err, gethnode.ErrNodeStopped) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

func waitChan(stack *gethnode.Node) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		stack.Wait()
		close(ch)
	}()
	return ch
}

// startMetricsServer serves the default metrics registry in Prometheus format.
func startMetricsServer(host string, port int) (*http.Server, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(metricsPath, prometheus.Handler(metrics.DefaultRegistry))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info("Metrics server started", "url", "http://"+ln.Addr().String()+metricsPath)
	return srv, nil
}

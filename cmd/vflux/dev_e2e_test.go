package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/vflux-net/vflux/devchain"
	"github.com/vflux-net/vflux/p2ptest"
	"github.com/vflux-net/vflux/params"
)

// devNodeRPC dials the node's IPC endpoint.
func devNodeRPC(t *testing.T, n *e2eNode) *rpc.Client {
	t.Helper()
	c, err := rpc.Dial(filepath.Join(n.datadir, params.DefaultIPCName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func devBlockNumber(t *testing.T, c *rpc.Client) uint64 {
	t.Helper()
	var num hexutil.Uint64
	if err := c.Call(&num, "eth_blockNumber"); err != nil {
		t.Fatal(err)
	}
	return uint64(num)
}

// fetchDevHeaders connects a client built on go-ethereum's eth package to
// the node and fetches headers 0..count-1; they must chain up from the dev
// genesis made from the dev key in the node's datadir.
func fetchDevHeaders(t *testing.T, n *e2eNode, count int) {
	t.Helper()
	key, err := crypto.LoadECDSA(filepath.Join(n.datadir, params.DefaultNodeName, devchain.KeyFileName))
	if err != nil {
		t.Fatalf("dev key: %v", err)
	}
	genesis := devchain.Genesis(crypto.PubkeyToAddress(key.PublicKey), 0)
	cc, err := devchain.NewClientChain(genesis)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cp := cc.NewPeers()
	server, err := enode.Parse(enode.ValidSchemes, n.enode)
	if err != nil {
		t.Fatal(err)
	}
	srv := p2ptest.StartServer(t, p2ptest.ServerConfig{Protocols: cp.Protocols(), NoDiscovery: true, NoListen: true})
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	peer, err := cp.Dial(ctx, srv, server)
	if err != nil {
		t.Fatal(err)
	}
	headers, err := peer.Headers(ctx, 0, count)
	if err != nil {
		t.Fatalf("headers over eth: %v", err)
	}
	if len(headers) != count {
		t.Fatalf("got %d headers, want %d", len(headers), count)
	}
	if got, want := headers[0].Hash(), genesis.ToBlock().Hash(); got != want {
		t.Fatalf("header 0 is %x, the dev genesis is %x", got, want)
	}
	for i := 1; i < count; i++ {
		if headers[i].Number.Uint64() != uint64(i) || headers[i].ParentHash != headers[i-1].Hash() {
			t.Fatalf("header %d (number %d) does not follow header %d", i, headers[i].Number, i-1)
		}
	}
}

func TestADevNodeServesItsChainOverEthAndResumesItAfterARestart(t *testing.T) {
	dir := e2eDir(t)
	args := []string{"--vflux.serve", "--dev", "--dev.period", "1"}
	n := startE2ENode(t, dir, args...)
	n.out.wait(t, regexp.MustCompile(`Chain head was updated\s+number=3\b`), n.exited)

	// admin_nodeInfo shows eth as geth does: network and genesis.
	c := devNodeRPC(t, n)
	var info p2p.NodeInfo
	if err := c.Call(&info, "admin_nodeInfo"); err != nil {
		t.Fatal(err)
	}
	ethInfo, ok := info.Protocols["eth"].(map[string]interface{})
	if !ok || ethInfo["network"] != float64(1337) || ethInfo["genesis"] == nil {
		t.Fatalf("admin_nodeInfo eth = %v, want network 1337 and a genesis", info.Protocols["eth"])
	}
	if info.Protocols["snap"] == nil || info.Protocols["vfx"] == nil {
		t.Errorf("admin_nodeInfo lacks snap or vfx: %v", info.Protocols)
	}

	fetchDevHeaders(t, n, 4)
	head := devBlockNumber(t, c)
	c.Close()
	n.interrupt(t)

	n2 := startE2ENode(t, dir, args...)
	c2 := devNodeRPC(t, n2)
	if got := devBlockNumber(t, c2); got < head {
		t.Fatalf("head after the restart is %d, it was %d before", got, head)
	}
	// The resumed chain grows on from where it was and is served again.
	n2.out.wait(t, regexp.MustCompile(`Chain head was updated\s+number=`+strconv.FormatUint(head+1, 10)+`\b`), n2.exited)
	fetchDevHeaders(t, n2, int(head)+2)
}

func TestDevnetWithDevShowsEachClientsEthDownloadNextToItsCapacity(t *testing.T) {
	out, stderr, err := runVflux(t, "devnet", "--dev", "--duration", "3s", "--clients", "2", "--paid", "1",
		"--maxclients", "2", "--ipcpath", "")
	if err != nil {
		t.Fatalf("vflux devnet --dev: %v\n%s%s", err, out, stderr)
	}
	// Into a pipe: frames of the live view, no escape codes.
	if !regexp.MustCompile(`\n\nvflux top  devnet  .*\n(.*\n)*status   (FULL by|room for) `).MatchString(out) || strings.Contains(out, "\x1b") {
		t.Errorf("the devnet did not print plain frames of the live view with a status line:\n%s", out)
	}
	if !regexp.MustCompile(`\n  ID\s+NAME\s+STATE\s+CAPACITY  ETH KIB/S  POS BALANCE`).MatchString(out) {
		t.Errorf("the client table has no eth column after the capacity:\n%s", out)
	}
	if !regexp.MustCompile(`\n  [0-9a-f]{8}  paid-1  \w+\s+\d+\s+[0-9.]*[1-9]`).MatchString(out) {
		t.Errorf("the paid client shows no eth download:\n%s", out)
	}
}

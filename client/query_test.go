package client_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/rlp"
	"github.com/vflux-net/vflux/client"
	"github.com/vflux-net/vflux/params"
	"github.com/vflux-net/vflux/vflux"
)

func TestParseServerNodeRejectsUnusableAddresses(t *testing.T) {
	good := "enode://a979fb575495b8d6db44f750317d0f4622bf4c2aa3365d6af7c284339968eef29b69ad0dce72a4d8db5ebb4968de0e3bec910127f134779fbcb0cb6d3331163c@127.0.0.1:30303"
	tests := []struct {
		name, in, wantErr string
	}{
		{"an enode URL with an address", good, ""},
		{"an enode URL without an address", strings.Split(good, "@")[0], "no IP and UDP port"},
		{"garbage", "hello", "bad server address"},
		{"a truncated ENR", "enr:-Je4QFkmt3", "bad server address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := client.ParseServerNode(tt.in)
			if tt.wantErr == "" {
				if err != nil || n == nil {
					t.Fatalf("ParseServerNode = %v, %v", n, err)
				}
				return
			}
			if !errors.Is(err, client.ErrBadNode) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want ErrBadNode saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestQueryAmountsRejectsBadAmountListsBeforeSending(t *testing.T) {
	c := newClient(t, client.Config{})
	for _, count := range []int{0, params.MaxCapQueryAmounts + 1} {
		amounts := make([]*big.Int, count)
		for i := range amounts {
			amounts[i] = big.NewInt(1)
		}
		// Asking itself: a query that went out would fail with ErrNoAnswer.
		_, err := c.QueryAmounts(context.Background(), c.Self(), amounts)
		if err == nil || errors.Is(err, client.ErrNoAnswer) {
			t.Errorf("a query with %d amounts: %v, want it refused before sending", count, err)
		}
	}
}

func TestTalkReturnsTheRawAnswerAndAnEmptyOneForAnUnknownProtocol(t *testing.T) {
	s := startServer(t, serverConfig(1), nil)
	c := newClient(t, client.Config{})
	ctx := context.Background()
	resp, err := c.Talk(ctx, s.node(), "not-vfx", []byte{0xc0})
	if err != nil || len(resp) != 0 {
		t.Errorf("TALKREQ of an unknown protocol id: %x, %v; want an empty answer", resp, err)
	}
	var reqs vflux.Requests
	if _, err := reqs.Add(params.ServiceName, vflux.ServerInfoName, []interface{}{}); err != nil {
		t.Fatal(err)
	}
	enc, err := rlp.EncodeToBytes(reqs)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.Talk(ctx, s.node(), params.TalkProtocolID, enc)
	if err != nil {
		t.Fatal(err)
	}
	var replies vflux.Replies
	if err := rlp.DecodeBytes(resp, &replies); err != nil {
		t.Fatalf("answer %x does not decode: %v", resp, err)
	}
	var info vflux.ServerInfoReply
	if err := replies.Get(0, &info); err != nil || info.MaxCount != 1 {
		t.Errorf("server info %+v, %v; want maxCount 1", info, err)
	}
}

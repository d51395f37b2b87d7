package node

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/rpc"
)

// RPCClient is a typed client of the "vflux" RPC namespace.
type RPCClient struct {
	c *rpc.Client
}

// NewRPCClient wraps an RPC connection (for example from node.Attach or
// rpc.Dial on the IPC path).
func NewRPCClient(c *rpc.Client) *RPCClient { return &RPCClient{c: c} }

// DialRPC connects to a node's RPC endpoint: an IPC path, http(s):// or ws(s)://.
func DialRPC(ctx context.Context, endpoint string) (*RPCClient, error) {
	c, err := rpc.DialContext(ctx, endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	return &RPCClient{c: c}, nil
}

// Close closes the connection.
func (c *RPCClient) Close() { c.c.Close() }

// ServerInfo calls vflux_serverInfo.
func (c *RPCClient) ServerInfo(ctx context.Context) (*ServerInfo, error) {
	var info ServerInfo
	if err := c.c.CallContext(ctx, &info, "vflux_serverInfo"); err != nil {
		return nil, err
	}
	return &info, nil
}

// ClientInfo calls vflux_clientInfo.
func (c *RPCClient) ClientInfo(ctx context.Context, ids ...string) (map[string]ClientInfo, error) {
	var res map[string]ClientInfo
	if err := c.c.CallContext(ctx, &res, "vflux_clientInfo", ids); err != nil {
		return nil, err
	}
	return res, nil
}

// PriorityClientInfo calls vflux_priorityClientInfo.
func (c *RPCClient) PriorityClientInfo(ctx context.Context, start, stop string, max int) (map[string]ClientInfo, error) {
	var res map[string]ClientInfo
	if err := c.c.CallContext(ctx, &res, "vflux_priorityClientInfo", start, stop, max); err != nil {
		return nil, err
	}
	return res, nil
}

// ConnectedClientInfo calls vflux_connectedClientInfo.
func (c *RPCClient) ConnectedClientInfo(ctx context.Context, max int) (map[string]ClientInfo, error) {
	var res map[string]ClientInfo
	if err := c.c.CallContext(ctx, &res, "vflux_connectedClientInfo", max); err != nil {
		return nil, err
	}
	return res, nil
}

// AddBalance calls vflux_addBalance and returns the old and new balance.
// Taking away more than the balance holds is an error (ErrBalanceTooLow on
// the node's side); AddBalanceClamped empties the balance instead.
func (c *RPCClient) AddBalance(ctx context.Context, id string, amount *big.Int) (oldBal, newBal uint64, err error) {
	return c.addBalance(ctx, id, amount, nil)
}

// AddBalanceClamped is AddBalance with the clamp option: a removal larger
// than the balance leaves 0.
func (c *RPCClient) AddBalanceClamped(ctx context.Context, id string, amount *big.Int) (oldBal, newBal uint64, err error) {
	return c.addBalance(ctx, id, amount, &AddBalanceOptions{Clamp: true})
}

func (c *RPCClient) addBalance(ctx context.Context, id string, amount *big.Int, opts *AddBalanceOptions) (oldBal, newBal uint64, err error) {
	var res [2]uint64
	if err := c.c.CallContext(ctx, &res, "vflux_addBalance", id, amount, opts); err != nil {
		return 0, 0, err
	}
	return res[0], res[1], nil
}

// SetClientParams calls vflux_setClientParams.
func (c *RPCClient) SetClientParams(ctx context.Context, ids []string, params map[string]interface{}) error {
	return c.c.CallContext(ctx, nil, "vflux_setClientParams", ids, params)
}

// SetDefaultParams calls vflux_setDefaultParams.
func (c *RPCClient) SetDefaultParams(ctx context.Context, params map[string]interface{}) error {
	return c.c.CallContext(ctx, nil, "vflux_setDefaultParams", params)
}

// SetConnectedBias calls vflux_setConnectedBias.
func (c *RPCClient) SetConnectedBias(ctx context.Context, seconds uint64) error {
	return c.c.CallContext(ctx, nil, "vflux_setConnectedBias", seconds)
}

// SetLimits calls vflux_setLimits.
func (c *RPCClient) SetLimits(ctx context.Context, count, capacity uint64) error {
	return c.c.CallContext(ctx, nil, "vflux_setLimits", count, capacity)
}

// SubscribeEvents calls vflux_subscribe("events"); it needs an IPC or
// WebSocket connection.
func (c *RPCClient) SubscribeEvents(ctx context.Context, ch chan<- Event) (*rpc.ClientSubscription, error) {
	return c.c.Subscribe(ctx, "vflux", ch, "events")
}

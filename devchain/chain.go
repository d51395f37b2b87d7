package devchain

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/log"
	gethnode "github.com/ethereum/go-ethereum/node"
)

const (
	// DefaultPeriod is the default block period in seconds.
	DefaultPeriod = 2
	// DefaultGasLimit is the genesis gas limit (geth's --dev.gaslimit default).
	DefaultGasLimit = 11_500_000
	// KeyFileName is the dev account's key file in the node's instance
	// directory (hex, as crypto.SaveECDSA writes it).
	KeyFileName = "devkey"
	// chainDataName is the directory eth.New opens the chain database in.
	chainDataName = "chaindata"
)

// Config configures the dev chain.
type Config struct {
	// Period is the block period in seconds; a block is sealed every Period
	// seconds, with or without transactions. It must be at least 1: a dev
	// chain that only seals on demand would serve nothing new.
	Period uint64
	// GasLimit is the genesis gas limit; 0 means DefaultGasLimit.
	GasLimit uint64
}

// DefaultConfig returns a block every DefaultPeriod seconds.
func DefaultConfig() Config {
	return Config{Period: DefaultPeriod, GasLimit: DefaultGasLimit}
}

// Chain is a dev chain registered on a stack.
type Chain struct {
	eth     *eth.Ethereum
	beacon  *catalyst.SimulatedBeacon
	key     *ecdsa.PrivateKey
	genesis *core.Genesis
	keyFile string // "" for an ephemeral chain (no datadir)
}

// Genesis returns the dev genesis whose only funded account (besides the
// precompiles and system contracts) is faucet.
func Genesis(faucet common.Address, gasLimit uint64) *core.Genesis {
	if gasLimit == 0 {
		gasLimit = DefaultGasLimit
	}
	return core.DeveloperGenesisBlock(gasLimit, &faucet)
}

// Register adds the dev chain to stack: go-ethereum's eth service on the
// stack's chain database (full sync: the chain is made here, not
// downloaded), its RPC APIs, and the simulated beacon that seals a block
// every cfg.Period seconds. The dev key is loaded from the instance directory,
// or created there on first use; without a datadir key and chain live in
// memory. Call it before stack.Start, and before vflux's node.New.
func Register(stack *gethnode.Node, cfg Config) (*Chain, error) {
	if cfg.Period == 0 {
		return nil, errors.New("dev chain: the block period must be at least 1 second")
	}
	c := &Chain{}
	if err := c.loadKey(stack); err != nil {
		return nil, err
	}
	addr := c.Address()
	c.genesis = Genesis(addr, cfg.GasLimit)

	ecfg := ethconfig.Defaults
	ecfg.Genesis = c.genesis
	ecfg.NetworkId = c.genesis.Config.ChainID.Uint64()
	ecfg.SyncMode = ethconfig.FullSync // under snap sync eth refuses most non-snap peers
	ecfg.EnablePreimageRecording = true
	ecfg.Miner.PendingFeeRecipient = addr
	ecfg.Miner.GasPrice = big.NewInt(1)
	// A dev chain is small: go-ethereum's defaults (gigabytes of cache) are
	// sized for mainnet and would only cost memory here. SnapshotCache must
	// stay above zero: without snapshots eth.New registers no snap protocol.
	ecfg.DatabaseCache = 32
	ecfg.DatabaseHandles = 128
	ecfg.TrieCleanCache = 16
	ecfg.TrieDirtyCache = 16
	ecfg.SnapshotCache = 16
	backend, err := eth.New(stack, &ecfg)
	if err != nil {
		if c.keyFile != "" {
			return nil, fmt.Errorf("dev chain (dev key %s): %w", c.keyFile, err)
		}
		return nil, fmt.Errorf("dev chain: %w", err)
	}
	c.eth = backend
	beacon, err := catalyst.NewSimulatedBeacon(cfg.Period, addr, backend)
	if err != nil {
		return nil, fmt.Errorf("dev chain: simulated beacon: %w", err)
	}
	c.beacon = beacon
	catalyst.RegisterSimulatedBeaconAPIs(stack, beacon)
	stack.RegisterLifecycle(beacon)
	head := backend.BlockChain().CurrentBlock()
	log.Info("Dev chain", "account", addr, "key", c.keyFile, "head", head.Number, "period", fmt.Sprintf("%ds", cfg.Period),
		"network", ecfg.NetworkId, "genesis", backend.BlockChain().Genesis().Hash())
	return c, nil
}

// loadKey reads the dev key from the instance directory, or creates it there
// when neither it nor a chain exists yet. A chain without its key is an
// error: a new key would make a different genesis that the chain's database
// refuses.
func (c *Chain) loadKey(stack *gethnode.Node) error {
	c.keyFile = stack.ResolvePath(KeyFileName)
	if c.keyFile == "" { // no datadir: an ephemeral chain in memory
		key, err := crypto.GenerateKey()
		c.key = key
		return err
	}
	key, err := crypto.LoadECDSA(c.keyFile)
	switch {
	case err == nil:
		c.key = key
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("dev chain: dev key %s: %w", c.keyFile, err)
	}
	if _, err := os.Stat(stack.ResolvePath(chainDataName)); err == nil {
		return fmt.Errorf("dev chain: %s has a chain but no dev key %s: restore the key or remove the chain",
			stack.ResolvePath(chainDataName), c.keyFile)
	}
	if key, err = crypto.GenerateKey(); err != nil {
		return err
	}
	if err := os.MkdirAll(stack.ResolvePath(""), 0o700); err != nil {
		return fmt.Errorf("dev chain: %w", err)
	}
	if err := crypto.SaveECDSA(c.keyFile, key); err != nil {
		return fmt.Errorf("dev chain: save dev key: %w", err)
	}
	c.key = key
	return nil
}

// Address is the funded dev account (the fee recipient of every block).
func (c *Chain) Address() common.Address { return crypto.PubkeyToAddress(c.key.PublicKey) }

// Key is the dev account's private key.
func (c *Chain) Key() *ecdsa.PrivateKey { return c.key }

// Genesis is the chain's genesis specification.
func (c *Chain) Genesis() *core.Genesis { return c.genesis }

// Eth is the eth service.
func (c *Chain) Eth() *eth.Ethereum { return c.eth }

// Head is the current head block's header.
func (c *Chain) Head() *types.Header { return c.eth.BlockChain().CurrentBlock() }

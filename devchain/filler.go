package devchain

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/params"
)

// txFiller is a lifecycle that gives the devnet's blocks bodies to download:
// on every new head it sends perBlock transfers from the dev account (to a
// fixed address) into the transaction pool, so the next block carries them.
type txFiller struct {
	chain    *Chain
	perBlock int
	quit     chan struct{}
	done     chan struct{}
}

// fillerRecipient receives the devnet's transfers.
var fillerRecipient = common.HexToAddress("0x00000000000000000000000000000000000dEaD1")

func newTxFiller(chain *Chain, perBlock int) *txFiller {
	return &txFiller{chain: chain, perBlock: perBlock, quit: make(chan struct{}), done: make(chan struct{})}
}

// Start implements node.Lifecycle.
func (f *txFiller) Start() error {
	go f.loop()
	return nil
}

// Stop implements node.Lifecycle; it returns once the loop has ended.
func (f *txFiller) Stop() error {
	close(f.quit)
	<-f.done
	return nil
}

func (f *txFiller) loop() {
	defer close(f.done)
	heads := make(chan core.ChainHeadEvent, 4)
	sub := f.chain.eth.BlockChain().SubscribeChainHeadEvent(heads)
	defer sub.Unsubscribe()
	f.fill()
	for {
		select {
		case <-heads:
			f.fill()
		case <-sub.Err():
			return
		case <-f.quit:
			return
		}
	}
}

// fill sends the transfers for the next block. A failure is logged once per
// block and not retried: the next head tries again.
func (f *txFiller) fill() {
	bc := f.chain.eth.BlockChain()
	config := bc.Config()
	signer := types.LatestSigner(config)
	head := bc.CurrentBlock()
	tip := big.NewInt(params.GWei)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	nonce := f.chain.eth.TxPool().PoolNonce(f.chain.Address())
	txs := make([]*types.Transaction, 0, f.perBlock)
	for i := 0; i < f.perBlock; i++ {
		tx, err := types.SignNewTx(f.chain.key, signer, &types.DynamicFeeTx{
			ChainID:   config.ChainID,
			Nonce:     nonce + uint64(i),
			GasTipCap: tip,
			GasFeeCap: feeCap,
			Gas:       params.TxGas,
			To:        &fillerRecipient,
			Value:     big.NewInt(1),
		})
		if err != nil {
			log.Warn("Devnet transfer not signed", "err", err)
			return
		}
		txs = append(txs, tx)
	}
	for _, err := range f.chain.eth.TxPool().Add(txs, false) {
		if err != nil {
			log.Warn("Devnet transfer refused", "err", err)
			return
		}
	}
}

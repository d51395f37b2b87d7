package node

import (
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// logTopUp tells the operator about a balance change made over RPC.
func (s *Service) logTopUp(id enode.ID, amount int64, oldBal, newBal uint64) {
	s.log.Info("Balance changed", "client", id.TerminalString(), "amount", amount, "old", oldBal, "new", newBal)
}

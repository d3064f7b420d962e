package localnet

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/eth/gasestimator"
	"github.com/holiman/uint256"
)

// estimateErrorRatio is the tolerance geth's eth_estimateGas uses: a bisection
// within 1.5% of the optimum is good enough and saves executions.
const estimateErrorRatio = 0.015

// call runs msg against a private copy of the state after block number (nil
// for the head), as eth_call does: nothing it does is kept. A revert is
// returned as a *RevertError.
func (b *backend) call(ctx context.Context, msg ethereum.CallMsg, number *big.Int) ([]byte, error) {
	head, st, err := b.stateAt(number)
	if err != nil {
		return nil, err
	}
	m, err := callMessage(msg, head)
	if err != nil {
		return nil, err
	}
	blockCtx := core.NewEVMBlockContext(head, b, nil)
	if m.GasPrice.IsZero() {
		// Like eth_call, let a call that offers no fee run under the base
		// fee, so reads need no funded sender.
		blockCtx.BaseFee = new(big.Int)
	}
	evm := vm.NewEVM(blockCtx, st, b.config, vm.Config{NoBaseFee: true})
	defer evm.Release()
	stop := context.AfterFunc(ctx, evm.Cancel)
	defer stop()

	res, err := core.ApplyMessage(evm, m, nil)
	if err != nil {
		return nil, err
	}
	if evm.Cancelled() {
		return nil, context.Cause(ctx)
	}
	if res.Failed() {
		return nil, execError(res.Err, res.Revert())
	}
	return res.Return(), nil
}

// estimateGas returns the gas msg needs at the head, found with geth's own
// estimator (the same bisection eth_estimateGas runs). A call that reverts
// whatever its gas is reported as a *RevertError.
func (b *backend) estimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error) {
	head, st, err := b.stateAt(nil)
	if err != nil {
		return 0, err
	}
	m, err := callMessage(msg, head)
	if err != nil {
		return 0, err
	}
	// The estimator picks its own upper bound when no gas is given.
	m.GasLimit = msg.Gas
	opts := &gasestimator.Options{Config: b.config, Chain: b, Header: head, State: st, ErrorRatio: estimateErrorRatio}
	gas, revert, err := gasestimator.Estimate(ctx, m, opts, 0)
	if err != nil {
		return 0, execError(err, revert)
	}
	return gas, nil
}

// callMessage turns an eth_call request into a core.Message the way geth's
// RPC layer does: no nonce or sender-is-EOA checks, gas defaulting to the
// block's limit (a call is no transaction, so Osaka's per-transaction cap
// does not apply), and the effective gas price of the fee fields given.
func callMessage(msg ethereum.CallMsg, head *types.Header) (*core.Message, error) {
	var err error
	u256 := func(b *big.Int) *uint256.Int {
		if b == nil || err != nil {
			return new(uint256.Int)
		}
		v, overflow := uint256.FromBig(b)
		if overflow || b.Sign() < 0 {
			err = fmt.Errorf("localnet: %s is not a uint256", b)
		}
		return v
	}
	m := &core.Message{
		From:       msg.From,
		To:         msg.To,
		Value:      u256(msg.Value),
		GasLimit:   msg.Gas,
		Data:       msg.Data,
		AccessList: msg.AccessList,
		GasPrice:   u256(msg.GasPrice),
		GasFeeCap:  u256(msg.GasFeeCap),
		GasTipCap:  u256(msg.GasTipCap),
	}
	if m.GasLimit == 0 {
		m.GasLimit = head.GasLimit
	}
	switch {
	case msg.GasPrice != nil: // legacy pricing
		m.GasFeeCap, m.GasTipCap = m.GasPrice, m.GasPrice
	case !m.GasFeeCap.IsZero() && head.BaseFee != nil:
		m.GasPrice = new(uint256.Int).Add(m.GasTipCap, u256(head.BaseFee))
		if m.GasPrice.Gt(m.GasFeeCap) {
			m.GasPrice = m.GasFeeCap
		}
	}
	if err != nil {
		return nil, err
	}
	return m.SkipNonceCheck().SkipEOACheck().SkipGasLimitCapCheck(), nil
}

// execError maps a failed execution onto the errors callers see: a revert
// becomes a *RevertError carrying the contract's payload, anything else (out
// of gas, an invalid opcode, no funds) is returned as is.
func execError(err error, revert []byte) error {
	if len(revert) > 0 || errors.Is(err, vm.ErrExecutionReverted) {
		return newRevertError(revert)
	}
	return err
}

func newRevertError(data []byte) *RevertError {
	reason, _ := abi.UnpackRevert(data)
	return &RevertError{Reason: reason, Data: data}
}

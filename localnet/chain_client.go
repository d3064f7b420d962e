package localnet

import (
	"context"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// ChainClient reads and writes the chain directly, with the method
// signatures of go-ethereum's ethclient so code written against a real node
// reads the same. Each method is what one JSON-RPC call does (eth_chainId,
// eth_blockNumber, eth_getBalance, eth_call, eth_sendRawTransaction, ...),
// which keeps serving the chain over RPC a thin adapter.
//
// Block numbers: nil or negative means the head; only the most recent blocks'
// states are kept, so reading old state fails. Lookups that find nothing
// return ethereum.NotFound, and every method returns ErrClosed once the chain
// is closed. Transactions sent here are only mined when something asks the
// miner for a block; use Chain.WaitMined.
type ChainClient struct {
	b *backend
}

// ChainID returns the chain id transactions must be signed for.
func (c *ChainClient) ChainID(ctx context.Context) (*big.Int, error) {
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	return new(big.Int).Set(c.b.config.ChainID), nil
}

// BlockNumber returns the head's number.
func (c *ChainClient) BlockNumber(ctx context.Context) (uint64, error) {
	h, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		return 0, err
	}
	return h.Number.Uint64(), nil
}

// HeaderByNumber returns a copy of the header of block number.
func (c *ChainClient) HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := c.b.header(number)
	if err != nil {
		return nil, err
	}
	return types.CopyHeader(h), nil
}

// HeaderByHash returns a copy of the header of the block with hash.
func (c *ChainClient) HeaderByHash(ctx context.Context, hash common.Hash) (*types.Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := c.b.headerByHash(hash)
	if err != nil {
		return nil, err
	}
	return types.CopyHeader(h), nil
}

// BalanceAt returns addr's native balance in wei after block number.
func (c *ChainClient) BalanceAt(ctx context.Context, addr common.Address, number *big.Int) (*big.Int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, st, err := c.b.stateAt(number)
	if err != nil {
		return nil, err
	}
	return st.GetBalance(addr).ToBig(), nil
}

// NonceAt returns addr's nonce after block number.
func (c *ChainClient) NonceAt(ctx context.Context, addr common.Address, number *big.Int) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	_, st, err := c.b.stateAt(number)
	if err != nil {
		return 0, err
	}
	return st.GetNonce(addr), nil
}

// PendingNonceAt returns the nonce addr's next transaction must carry,
// counting its transactions waiting in the pool.
func (c *ChainClient) PendingNonceAt(ctx context.Context, addr common.Address) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return c.b.pendingNonce(addr)
}

// CodeAt returns the code deployed at addr after block number.
func (c *ChainClient) CodeAt(ctx context.Context, addr common.Address, number *big.Int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, st, err := c.b.stateAt(number)
	if err != nil {
		return nil, err
	}
	return st.GetCode(addr), nil
}

// CallContract executes msg on a copy of the state after block number and
// returns its output. A revert is returned as a *RevertError.
func (c *ChainClient) CallContract(ctx context.Context, msg ethereum.CallMsg, number *big.Int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.b.call(ctx, msg, number)
}

// EstimateGas returns the gas msg needs at the head. A call that reverts
// whatever its gas is reported as a *RevertError.
func (c *ChainClient) EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return c.b.estimateGas(ctx, msg)
}

// SendTransaction validates a signed transaction against the head and queues
// it for the next block. Each sender's transactions must arrive in nonce
// order.
func (c *ChainClient) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.b.addTx(tx)
}

// TransactionReceipt returns the receipt of a mined transaction, or
// ethereum.NotFound while it is pending or unknown.
func (c *ChainClient) TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.b.receipt(hash)
}

// TransactionByHash returns a mined or pooled transaction.
func (c *ChainClient) TransactionByHash(ctx context.Context, hash common.Hash) (tx *types.Transaction, isPending bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	return c.b.transaction(hash)
}

func (c *ChainClient) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := c.b.header(nil) // fails once closed
	return err
}

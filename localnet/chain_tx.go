package localnet

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// gasHeadroom is added to every estimate: a transaction estimated
// against the latest block may execute after others in the same block
// that change which storage slots it finds empty. Unused gas is refunded.
const gasHeadroom = 50_000

// gasTip pays the block's coinbase like a transaction on a public chain
// would; the local miner includes every valid transaction whatever its tip.
var gasTip = big.NewInt(params.GWei)

// senderState serialises transaction submission per account. Sending under
// the lock in nonce order keeps every transaction executable the moment it
// reaches the pool, so a burst from one key never leaves nonce gaps.
type senderState struct {
	mu    sync.Mutex
	next  uint64
	known bool
}

// SimulateTransferWithAuthorization runs the settlement as an eth_call from
// sender against the latest block. A rejection is returned as a *RevertError.
func (c *Chain) SimulateTransferWithAuthorization(ctx context.Context, sender common.Address, a Authorization, sig []byte) error {
	data, err := c.packTransferWithAuthorization(a, sig)
	if err != nil {
		return err
	}
	_, err = c.call(ctx, sender, data)
	return err
}

// TransferWithAuthorization simulates the settlement, then submits it signed
// by sender and waits until it is mined. A rejection before sending returns a
// *RevertError and sends nothing. If the mined transaction failed anyway, the
// receipt is returned together with an error wrapping ErrTxReverted.
func (c *Chain) TransferWithAuthorization(ctx context.Context, sender *ecdsa.PrivateKey, a Authorization, sig []byte) (*types.Receipt, error) {
	return c.transferWithAuthorization(ctx, sender, a, sig, nil)
}

// transferWithAuthorization is TransferWithAuthorization telling sent the
// transaction's hash as soon as the pool accepted it, before it is mined:
// from then on the transfer may happen whatever the wait returns.
func (c *Chain) transferWithAuthorization(ctx context.Context, sender *ecdsa.PrivateKey, a Authorization, sig []byte, sent func(common.Hash)) (*types.Receipt, error) {
	done := c.beginSubmit()
	defer done()
	tx, err := c.submitTransferWithAuthorization(ctx, sender, a, sig)
	if err != nil {
		return nil, err
	}
	if sent != nil {
		sent(tx.Hash())
	}
	r, err := c.waitMined(ctx, tx.Hash(), done)
	if err != nil {
		return nil, err
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return r, fmt.Errorf("%w: %s in block %d", ErrTxReverted, tx.Hash(), r.BlockNumber)
	}
	return r, nil
}

// submitTransferWithAuthorization simulates the settlement and hands it to
// the pool without asking for a block: the transfer stays pending until
// somebody waits for a block (WaitMined, or any other settlement).
func (c *Chain) submitTransferWithAuthorization(ctx context.Context, sender *ecdsa.PrivateKey, a Authorization, sig []byte) (*types.Transaction, error) {
	data, err := c.packTransferWithAuthorization(a, sig)
	if err != nil {
		return nil, err
	}
	if _, err := c.call(ctx, crypto.PubkeyToAddress(sender.PublicKey), data); err != nil {
		return nil, err
	}
	return c.send(ctx, sender, &c.tokenAddr, nil, data)
}

func (c *Chain) packTransferWithAuthorization(a Authorization, sig []byte) ([]byte, error) {
	if len(sig) != crypto.SignatureLength {
		return nil, fmt.Errorf("localnet: signature must be %d bytes, got %d", crypto.SignatureLength, len(sig))
	}
	if a.Value == nil || a.ValidAfter == nil || a.ValidBefore == nil {
		return nil, errors.New("localnet: authorization value, validAfter and validBefore are required")
	}
	var r, s [32]byte
	copy(r[:], sig[:32])
	copy(s[:], sig[32:64])
	return c.token.packTransferWithAuthorization(a, sig[64], r, s)
}

// send signs and submits a dynamic-fee transaction from key with the next
// nonce of that account. A transaction that would revert is reported as a
// *RevertError by the gas estimate and never sent.
func (c *Chain) send(ctx context.Context, key *ecdsa.PrivateKey, to *common.Address, value *big.Int, data []byte) (*types.Transaction, error) {
	from := crypto.PubkeyToAddress(key.PublicKey)
	// Estimated outside the sender lock: it is the slow part and needs no
	// nonce.
	gas, err := c.client.EstimateGas(ctx, ethereum.CallMsg{From: from, To: to, Value: value, Data: data})
	if err != nil {
		return nil, err
	}
	gas += gasHeadroom
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	// Twice the base fee leaves room for several full blocks of base-fee
	// growth before the transaction would become unminable.
	feeCap := new(big.Int).Add(gasTip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	if value == nil {
		value = new(big.Int)
	}

	st := c.sender(from)
	st.mu.Lock()
	defer st.mu.Unlock()
	// A nonce error means the key was also used outside this Chain; one
	// resync from the pool's view repairs that.
	for attempt := 0; ; attempt++ {
		if !st.known {
			n, err := c.client.PendingNonceAt(ctx, from)
			if err != nil {
				return nil, err
			}
			st.next, st.known = n, true
		}
		tx, err := types.SignNewTx(key, c.signer, &types.DynamicFeeTx{
			ChainID:   c.chainID,
			Nonce:     st.next,
			GasTipCap: gasTip,
			GasFeeCap: feeCap,
			Gas:       gas,
			To:        to,
			Value:     value,
			Data:      data,
		})
		if err != nil {
			return nil, err
		}
		if err := c.client.SendTransaction(ctx, tx); err != nil {
			// The pool refused it, so whether the nonce is free is
			// something only the pool knows now.
			st.known = false
			if attempt == 0 && strings.Contains(err.Error(), "nonce") {
				continue
			}
			return nil, err
		}
		st.next++
		return tx, nil
	}
}

func (c *Chain) sender(addr common.Address) *senderState {
	c.sendersMu.Lock()
	defer c.sendersMu.Unlock()
	st, ok := c.senders[addr]
	if !ok {
		st = &senderState{}
		c.senders[addr] = st
	}
	return st
}

// waitAllSucceeded waits for txs (all already sent) and requires each to have
// succeeded; funding and deployment have no business failing.
func (c *Chain) waitAllSucceeded(ctx context.Context, txs []*types.Transaction, requested func()) error {
	defer requested()
	for _, tx := range txs {
		r, err := c.waitMined(ctx, tx.Hash(), requested)
		if err != nil {
			return err
		}
		if r.Status != types.ReceiptStatusSuccessful {
			return fmt.Errorf("%w: %s", ErrTxReverted, tx.Hash())
		}
	}
	return nil
}

package localnet

import (
	_ "embed"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The token's ABI and creation code are embedded from the solc artifacts in
// token/ rather than taken from the abigen binding there: the binding imports
// accounts/abi/bind/v2, which drags go-ethereum's RPC client, clef's external
// signer and p2p/netutil into every binary that links localnet. The token
// package's own test keeps the artifacts and the binding in step.
var (
	//go:embed token/Token.abi
	tokenABIJSON string
	//go:embed token/Token.bin
	tokenBinHex string
)

// tokenCodec packs calls to the token and unpacks their results.
type tokenCodec struct {
	abi  abi.ABI
	code []byte // creation code, without constructor arguments
}

// newTokenCodec parses the embedded artifacts. It runs per chain rather than
// at package init, so processes that link localnet without starting a chain
// (the stdio server) pay nothing for it.
func newTokenCodec() (*tokenCodec, error) {
	parsed, err := abi.JSON(strings.NewReader(tokenABIJSON))
	if err != nil {
		return nil, fmt.Errorf("localnet: token ABI: %w", err)
	}
	code, err := hexutil.Decode("0x" + strings.TrimSpace(tokenBinHex))
	if err != nil {
		return nil, fmt.Errorf("localnet: token bytecode: %w", err)
	}
	return &tokenCodec{abi: parsed, code: code}, nil
}

// deployData is the creation code followed by the constructor arguments.
func (t *tokenCodec) deployData(name, version string) ([]byte, error) {
	args, err := t.abi.Pack("", name, version)
	if err != nil {
		return nil, err
	}
	return append(append([]byte{}, t.code...), args...), nil
}

func (t *tokenCodec) packMint(to common.Address, amount *big.Int) ([]byte, error) {
	return t.abi.Pack("mint", to, amount)
}

func (t *tokenCodec) packBalanceOf(addr common.Address) ([]byte, error) {
	return t.abi.Pack("balanceOf", addr)
}

func (t *tokenCodec) packAuthorizationState(from common.Address, nonce [32]byte) ([]byte, error) {
	return t.abi.Pack("authorizationState", from, nonce)
}

func (t *tokenCodec) packDomainSeparator() ([]byte, error) {
	return t.abi.Pack("DOMAIN_SEPARATOR")
}

func (t *tokenCodec) packTransferWithAuthorization(a Authorization, v uint8, r, s [32]byte) ([]byte, error) {
	return t.abi.Pack("transferWithAuthorization", a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, v, r, s)
}

// unpack decodes the single return value of method into a T.
func unpack[T any](t *tokenCodec, method string, out []byte) (T, error) {
	var zero T
	vals, err := t.abi.Unpack(method, out)
	if err != nil {
		return zero, err
	}
	if len(vals) != 1 {
		return zero, fmt.Errorf("localnet: %s returned %d values, want 1", method, len(vals))
	}
	v, ok := vals[0].(T)
	if !ok {
		return zero, fmt.Errorf("localnet: %s returned %T, want %T", method, vals[0], zero)
	}
	return v, nil
}

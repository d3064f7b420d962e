package signer

import (
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/x402-mcp/x402-mcp/tokens"
	"github.com/x402-mcp/x402-mcp/x402"
)

// The EIP-712 digest is computed here directly (keccak over fixed 32-byte
// words) instead of through apitypes.TypedDataAndHash. The general encoder
// builds maps, parses type strings and reflects over every value on every
// call, which for one fixed struct makes it several times slower than this
// one (compare BenchmarkDigest and BenchmarkDigestAPITypes) and a sizeable
// share of a Sign next to the ECDSA operation. The test suite checks this
// encoder against
// apitypes.TypedDataAndHash on random inputs and against the independent
// vectors in testdata, so the two cannot silently disagree.

// Type strings, exactly as EIP-712 encodeType produces them. EIP-3009 tokens
// (USDC's FiatTokenV2) use a domain with these four fields and no salt.
const (
	eip712DomainType              = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
	transferWithAuthorizationType = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)

var (
	domainTypeHash   = crypto.Keccak256Hash([]byte(eip712DomainType))
	transferTypeHash = crypto.Keccak256Hash([]byte(transferWithAuthorizationType))
)

// DomainSeparator is the EIP-712 domain separator of t: the value the token
// contract returns from DOMAIN_SEPARATOR(), so a caller with RPC access can
// compare the registry against the chain. It is the zero value when t has
// no complete domain (see Digest for the reason).
func DomainSeparator(t tokens.Token) [32]byte {
	sep, err := domainSeparator(t)
	if err != nil {
		return [32]byte{}
	}
	return sep
}

// checkDomain refuses a token whose domain could not match any deployed
// EIP-3009 token: a signature under it would be useless at best, and an
// empty name or version usually means the registry entry was never filled.
func checkDomain(t tokens.Token) error {
	switch {
	case t.Name == "":
		return newError("signer: token "+t.Address.Hex()+" on "+t.Network+" has an empty EIP-712 name; fix its registry entry", ErrBadDomain)
	case t.Version == "":
		return newError("signer: token "+t.Address.Hex()+" on "+t.Network+" has an empty EIP-712 version; fix its registry entry", ErrBadDomain)
	case t.ChainID == nil || t.ChainID.Sign() <= 0 || t.ChainID.BitLen() > 256:
		return newError("signer: token "+t.Address.Hex()+" on "+t.Network+" has no valid chain id; fix its registry entry", ErrBadDomain)
	case t.Address == (common.Address{}):
		return newError("signer: token on "+t.Network+" has the zero contract address; fix its registry entry", ErrBadDomain)
	}
	return nil
}

// domainKey is everything that goes into a domain separator, by value, so
// two tokens share a cache entry only if their separators are equal. (A
// key that left a field out could hand back another token's separator and
// produce a signature valid on the wrong chain or contract.)
type domainKey struct {
	name, version string
	chainID       [32]byte
	contract      common.Address
}

// Separators are cached because they are three of the five keccak
// permutations in a digest (about 2 µs, a few percent of a Sign). The cache
// is bounded: Recover accepts any token, and a caller verifying foreign
// signatures must not be able to grow it without limit. Past the bound,
// separators are simply recomputed.
const maxCachedDomains = 64

var separators struct {
	sync.RWMutex
	m map[domainKey][32]byte
}

func domainSeparator(t tokens.Token) ([32]byte, error) {
	if err := checkDomain(t); err != nil {
		return [32]byte{}, err
	}
	k := domainKey{name: t.Name, version: t.Version, contract: t.Address}
	t.ChainID.FillBytes(k.chainID[:])
	separators.RLock()
	sep, ok := separators.m[k]
	separators.RUnlock()
	if ok {
		return sep, nil
	}
	sep = computeDomainSeparator(t)
	separators.Lock()
	if separators.m == nil {
		separators.m = make(map[domainKey][32]byte)
	}
	if len(separators.m) < maxCachedDomains {
		separators.m[k] = sep
	}
	separators.Unlock()
	return sep, nil
}

// computeDomainSeparator does the hashing for a token checkDomain accepted.
func computeDomainSeparator(t tokens.Token) [32]byte {
	// hashStruct(EIP712Domain) = keccak(typeHash ‖ keccak(name) ‖
	// keccak(version) ‖ uint256(chainId) ‖ address(verifyingContract)).
	var buf [5 * 32]byte
	copy(buf[0:32], domainTypeHash[:])
	nameHash := crypto.Keccak256Hash([]byte(t.Name))
	copy(buf[32:64], nameHash[:])
	versionHash := crypto.Keccak256Hash([]byte(t.Version))
	copy(buf[64:96], versionHash[:])
	t.ChainID.FillBytes(buf[96:128])
	copy(buf[128+12:160], t.Address[:])
	return crypto.Keccak256Hash(buf[:])
}

// uint256Word writes x as a big-endian 256-bit word. It refuses nil,
// negative and oversized values instead of reducing them, which is what
// apitypes does too; FillBytes alone would panic on oversize and silently
// drop the sign of a negative number.
func uint256Word(dst []byte, x *big.Int, field string) error {
	if x == nil {
		return newError("signer: authorization "+field+" is missing", ErrBadAuthorization)
	}
	if x.Sign() < 0 || x.BitLen() > 256 {
		return newError("signer: authorization "+field+" is not a uint256", ErrBadAuthorization)
	}
	x.FillBytes(dst)
	return nil
}

// structHash is hashStruct(TransferWithAuthorization).
func structHash(a x402.Authorization) ([32]byte, error) {
	var buf [7 * 32]byte
	copy(buf[0:32], transferTypeHash[:])
	copy(buf[32+12:64], a.From[:])
	copy(buf[64+12:96], a.To[:])
	if err := uint256Word(buf[96:128], a.Value, "value"); err != nil {
		return [32]byte{}, err
	}
	if err := uint256Word(buf[128:160], a.ValidAfter, "validAfter"); err != nil {
		return [32]byte{}, err
	}
	if err := uint256Word(buf[160:192], a.ValidBefore, "validBefore"); err != nil {
		return [32]byte{}, err
	}
	copy(buf[192:224], a.Nonce[:])
	return crypto.Keccak256Hash(buf[:]), nil
}

// Digest is the EIP-712 digest of a TransferWithAuthorization under t's
// domain: keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)).
// It is the same value apitypes.TypedDataAndHash returns for the typed data
// x402 clients sign. It validates only what the encoding needs (a complete
// domain, numbers that are uint256); what makes an authorization acceptable
// to sign is Sign's business.
func Digest(t tokens.Token, a x402.Authorization) ([32]byte, error) {
	sep, err := domainSeparator(t)
	if err != nil {
		return [32]byte{}, err
	}
	sh, err := structHash(a)
	if err != nil {
		return [32]byte{}, err
	}
	var buf [2 + 32 + 32]byte
	buf[0], buf[1] = 0x19, 0x01
	copy(buf[2:34], sep[:])
	copy(buf[34:66], sh[:])
	return crypto.Keccak256Hash(buf[:]), nil
}

package tools

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// approvalTTL bounds how long a human has to answer, and how long a state
// token can be redeemed.
const approvalTTL = 5 * time.Minute

// Errors from redeeming an approval state token. They are what an "approved"
// answer the server did not ask for, a replay, or an answer for another
// payment produce.
var (
	errStateMissing  = errors.New("the approval arrived without the state token the server issued")
	errStateForged   = errors.New("the approval's state token was not issued by this server")
	errStateExpired  = errors.New("the approval's state token has expired")
	errStateReplayed = errors.New("the approval's state token was already used")
)

// approvals issues and redeems the signed, single-use, expiring state tokens
// that bind a human's answer to the one pending payment it was asked about.
// mcp-go does not remember that it asked; the token carries that memory, and
// the server's key makes it unforgeable. The key lives only in this process,
// so a token is worthless to any other server instance.
type approvals struct {
	key [32]byte
	now func() time.Time

	mu   sync.Mutex
	used map[[16]byte]time.Time // token id → expiry, pruned once expired
}

func newApprovals(now func() time.Time) (*approvals, error) {
	a := &approvals{now: now, used: map[[16]byte]time.Time{}}
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, err
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// token layout: version(1) | expiry unix seconds(8) | id(16) | binding(32) | mac(32)
const (
	tokenVersion = 1
	payloadLen   = 1 + 8 + 16 + 32
	tokenLen     = payloadLen + sha256.Size
)

// issue makes a state token for a payment identified by binding.
func (a *approvals) issue(binding [32]byte) (string, error) {
	var b [tokenLen]byte
	b[0] = tokenVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(a.now().Add(approvalTTL).Unix()))
	if _, err := rand.Read(b[9:25]); err != nil {
		return "", err
	}
	copy(b[25:57], binding[:])
	copy(b[payloadLen:], a.mac(b[:payloadLen]))
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// redeem checks and consumes a state token, returning the binding of the
// payment it was issued for. It fails unless the token is this server's,
// unexpired and unused. The caller pays only a payment whose binding is
// the returned one, so an answer cannot be carried over to another payment.
func (a *approvals) redeem(token string) ([32]byte, error) {
	var binding [32]byte
	if token == "" {
		return binding, errStateMissing
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return binding, errStateForged
	}
	if !hmac.Equal(b[payloadLen:], a.mac(b[:payloadLen])) {
		return binding, errStateForged
	}
	expiry := time.Unix(int64(binary.BigEndian.Uint64(b[1:9])), 0)
	now := a.now()
	if !now.Before(expiry) {
		return binding, errStateExpired
	}
	var id [16]byte
	copy(id[:], b[9:25])
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, exp := range a.used {
		if now.After(exp) {
			delete(a.used, k)
		}
	}
	if _, seen := a.used[id]; seen {
		return binding, errStateReplayed
	}
	// Any redemption spends the token, whatever becomes of the payment: an
	// answer is good for one try.
	a.used[id] = expiry
	copy(binding[:], b[25:57])
	return binding, nil
}

func (a *approvals) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, a.key[:])
	m.Write(payload)
	return m.Sum(nil)
}

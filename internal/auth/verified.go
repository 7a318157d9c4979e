package auth

import (
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// verifiedTokens remembers the access tokens this replica has verified, so
// that a client's every request does not pay again for the HMAC and for
// decoding the claims' JSON: 16 us of a post's 190 us of replica CPU
// under the throughput scenario (8%), against a map lookup. Only a
// byte-identical token hits, so nothing is accepted that a full check
// would refuse: its signature, issuer, audience, iat and subject cannot
// change, and its expiry is checked again on every hit. An entry lives
// until its token expires; the set is bounded and dropped whole when full
// (a token that falls out is verified again).
type verifiedTokens struct {
	mu     sync.RWMutex
	byText map[string]chat.Principal
}

// maxVerifiedTokens bounds the set: about 1 MiB of tokens and principals.
const maxVerifiedTokens = 4096

func newVerifiedTokens() *verifiedTokens {
	return &verifiedTokens{byText: make(map[string]chat.Principal)}
}

// lookup returns the principal of a verified token that has not expired at
// now.
func (v *verifiedTokens) lookup(token string, now time.Time) (chat.Principal, bool) {
	v.mu.RLock()
	p, ok := v.byText[token]
	v.mu.RUnlock()
	if !ok {
		return chat.Principal{}, false
	}
	if !now.Before(p.ExpiresAt) {
		v.mu.Lock()
		delete(v.byText, token)
		v.mu.Unlock()
		return chat.Principal{}, false
	}
	return p, true
}

// add records a token that passed every check.
func (v *verifiedTokens) add(token string, p chat.Principal) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.byText) >= maxVerifiedTokens {
		clear(v.byText)
	}
	v.byText[token] = p
}

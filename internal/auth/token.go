package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
)

// MinSecretLen is the shortest HS256 key we accept: golang-jwt would sign
// with an empty one.
const MinSecretLen = 32

// maxClockSkew is how far in the future a token's iat may lie.
const maxClockSkew = 30 * time.Second

// Tokens issues and verifies HS256 access tokens.
type Tokens struct {
	secret   []byte
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	verified *verifiedTokens
}

// NewTokens returns a Tokens; secret must be at least MinSecretLen bytes.
func NewTokens(secret []byte, issuer, audience string, ttl time.Duration) (*Tokens, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("jwt secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("access token lifetime must be positive, got %s", ttl)
	}
	return &Tokens{secret: secret, issuer: issuer, audience: audience, ttl: ttl, now: time.Now, verified: newVerifiedTokens()}, nil
}

// TTL is the access token lifetime.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs an access token for userID and returns it with its expiry.
func (t *Tokens) Issue(userID string) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl)
	claims := jwt.RegisteredClaims{
		Subject:   userID,
		Issuer:    t.issuer,
		Audience:  jwt.ClaimStrings{t.audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        uuid.NewString(),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	// Report the expiry the token carries (whole seconds).
	return s, claims.ExpiresAt.Time, nil
}

// Parse verifies an access token: HS256 only, signed with our key, our
// issuer and audience, exp required and not passed. A token verified
// before is only checked for expiry (see verifiedTokens).
func (t *Tokens) Parse(token string) (chat.Principal, error) {
	if p, ok := t.verified.lookup(token, t.now()); ok {
		return p, nil
	}
	p, err := t.verify(token)
	if err == nil {
		t.verified.add(token, p)
	}
	return p, err
}

// verify is Parse's full check.
func (t *Tokens) verify(token string) (chat.Principal, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(t.issuer),
		jwt.WithAudience(t.audience),
		// No leeway: tokens are issued and checked by our own replicas, and
		// a stream ends exactly at exp, so the token must stop working then.
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		msg := "invalid access token"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "access token expired"
		}
		return chat.Principal{}, &chat.Error{Code: chat.EUnauthenticated, Message: msg, Err: err}
	}
	// Tokens from the future are forged or from a badly skewed clock. The
	// allowance covers replicas whose clocks differ slightly; jwt's
	// WithIssuedAt would share exp's (zero) leeway.
	if claims.IssuedAt == nil || claims.IssuedAt.After(t.now().Add(maxClockSkew)) {
		return chat.Principal{}, chat.Errorf(chat.EUnauthenticated, "invalid access token")
	}
	if _, err := uuid.Parse(claims.Subject); err != nil {
		return chat.Principal{}, &chat.Error{Code: chat.EUnauthenticated, Message: "invalid access token", Err: err}
	}
	return chat.Principal{UserID: claims.Subject, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// NewRefreshToken returns a random opaque refresh token and its hash.
func NewRefreshToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("read refresh token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, HashRefreshToken(tok), nil
}

// HashRefreshToken is how refresh tokens are stored and looked up.
func HashRefreshToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

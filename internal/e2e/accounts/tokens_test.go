package accounts

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/e2e"
)

// MustSign signs claims with method and key.
func MustSign(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// validClaims are the claims of a token Parley would accept for userID.
func validClaims(userID string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": userID,
		"iss": "parley",
		"aud": "parley",
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
		"jti": uuid.NewString(),
	}
}

// claimsWith returns the valid claims for userID changed by edit.
func claimsWith(userID string, edit func(jwt.MapClaims)) jwt.MapClaims {
	c := validClaims(userID)
	edit(c)
	return c
}

// MustReplacePayload returns token with its payload replaced by claims and
// its header and signature kept.
func MustReplacePayload(tb testing.TB, token string, claims jwt.MapClaims) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token %q is not a JWS", token)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// flipSignature changes one character in the middle of token's signature
// (the last character may only carry padding bits).
func flipSignature(token string) string {
	i := strings.LastIndexByte(token, '.') + 10
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// TestAccessTokenRejected presents access tokens Parley did not issue, or
// must no longer accept, to an authenticated operation: every one is a 401
// with WWW-Authenticate: Bearer.
func TestAccessTokenRejected(t *testing.T) {
	t.Parallel()
	c, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	bob := e2e.MustRegister(t, r.URL, "bob")
	secret := []byte(c.Secret) // the raw bytes of PARLEY_JWT_SECRET
	id := alice.Session.User.ID

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherSecret := []byte(e2e.Secret(t))
	now := time.Now()

	// The control: a token crafted like the rest but valid is accepted, so
	// each refusal below is about what the case changes.
	t.Run("OKCrafted", func(t *testing.T) {
		if me := MustMe(t, r, MustSign(t, jwt.SigningMethodHS256, secret, validClaims(id))); me.ID != id {
			t.Fatalf("crafted token authenticates %s, want %s", me.ID, id)
		}
	})

	tests := []struct {
		name  string
		token string
	}{
		{"TamperedPayload", MustReplacePayload(t, alice.Token, validClaims(bob.Session.User.ID))},
		{"TamperedSignature", flipSignature(alice.Token)},
		{"NoSignature", alice.Token[:strings.LastIndexByte(alice.Token, '.')+1]},
		{"OtherKey", MustSign(t, jwt.SigningMethodHS256, otherSecret, validClaims(id))},
		{"EmptyKey", MustSign(t, jwt.SigningMethodHS256, []byte{}, validClaims(id))},
		{"HS384", MustSign(t, jwt.SigningMethodHS384, secret, validClaims(id))},
		{"HS512", MustSign(t, jwt.SigningMethodHS512, secret, validClaims(id))},
		{"RS256", MustSign(t, jwt.SigningMethodRS256, rsaKey, validClaims(id))},
		{"AlgNone", MustSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims(id))},
		{"Expired", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-16*time.Minute).Unix(), now.Add(-time.Minute).Unix()
		}))},
		{"NoExpiry", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"NotYetValid", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }))},
		{"WrongIssuer", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) { c["iss"] = "not-parley" }))},
		{"NoIssuer", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"WrongAudience", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) { c["aud"] = "not-parley" }))},
		{"NoAudience", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"SubjectNotUUID", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) { c["sub"] = "alice" }))},
		{"NoSubject", MustSign(t, jwt.SigningMethodHS256, secret, claimsWith(id, func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"NotAJWT", "not-a-jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v1/me", "/v1/users/by-name/alice"} {
				withToken(r, tt.token).Do(t, http.MethodGet, path, nil).MustProblem(t, http.StatusUnauthorized)
			}
		})
	}
}

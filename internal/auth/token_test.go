package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

// MustTokens returns Tokens with a 15-minute lifetime and a clock fixed at
// now.
func MustTokens(tb testing.TB, secret []byte, issuer, audience string, now time.Time) *Tokens {
	tb.Helper()
	tk, err := NewTokens(secret, issuer, audience, 15*time.Minute)
	if err != nil {
		tb.Fatalf("new tokens: %v", err)
	}
	tk.now = func() time.Time { return now }
	return tk
}

// MustSign signs claims with method and key.
func MustSign(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

func TestNewTokens(t *testing.T) {
	for _, tt := range []struct {
		name    string
		secret  []byte
		ttl     time.Duration
		wantErr bool
	}{
		{"OK", testSecret, time.Minute, false},
		{"OKLongSecret", bytes.Repeat([]byte("k"), 64), time.Minute, false},
		{"ErrNoSecret", nil, time.Minute, true},
		{"ErrEmptySecret", []byte{}, time.Minute, true},
		{"ErrShortSecret", testSecret[:31], time.Minute, true},
		{"ErrZeroTTL", testSecret, 0, true},
		{"ErrNegativeTTL", testSecret, -time.Minute, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tk, err := NewTokens(tt.secret, "parley", "parley", tt.ttl)
			if tt.wantErr {
				if err == nil {
					t.Fatal("accepted, want an error")
				}
				return
			}
			if err != nil || tk.TTL() != tt.ttl {
				t.Fatalf("NewTokens = %v, %v; want a Tokens with TTL %s", tk, err, tt.ttl)
			}
		})
	}
}

// TestTokensIssue: an issued token carries sub, iss, aud, iat, exp and a
// unique jti, is HS256, and parses back to its user and expiry.
func TestTokensIssue(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	tk := MustTokens(t, testSecret, "parley", "parley", now)
	user := uuid.NewString()
	seen := map[string]bool{}
	for range 2 {
		tok, exp, err := tk.Issue(user)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(now.Add(15 * time.Minute)) {
			t.Fatalf("expiry %v, want %v", exp, now.Add(15*time.Minute))
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("token %q is not a JWS", tok)
		}
		var header map[string]any
		var claims struct {
			Sub string   `json:"sub"`
			Iss string   `json:"iss"`
			Aud []string `json:"aud"`
			Iat int64    `json:"iat"`
			Exp int64    `json:"exp"`
			Jti string   `json:"jti"`
		}
		mustDecodeSegment(t, parts[0], &header)
		mustDecodeSegment(t, parts[1], &claims)
		if header["alg"] != "HS256" {
			t.Fatalf("header %v, want alg HS256", header)
		}
		if claims.Sub != user || claims.Iss != "parley" || len(claims.Aud) != 1 || claims.Aud[0] != "parley" ||
			claims.Iat != now.Unix() || claims.Exp != exp.Unix() || claims.Jti == "" {
			t.Fatalf("claims %+v", claims)
		}
		if seen[claims.Jti] {
			t.Fatalf("jti %s issued twice", claims.Jti)
		}
		seen[claims.Jti] = true
		p, err := tk.Parse(tok)
		if err != nil {
			t.Fatalf("parse an issued token: %v", err)
		}
		if p.UserID != user || !p.ExpiresAt.Equal(exp) {
			t.Fatalf("principal %+v, want user %s expiring %v", p, user, exp)
		}
	}
}

func mustDecodeSegment(tb testing.TB, seg string, v any) {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatalf("decode %q: %v", seg, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
}

// TestTokensExpiry: a token works until its exp, not at or after it.
func TestTokensExpiry(t *testing.T) {
	issued := time.Now().Truncate(time.Second)
	tok, exp, err := MustTokens(t, testSecret, "parley", "parley", issued).Issue(uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		at   time.Time
		want string // the message of the error; "" for none
	}{
		{"OKJustIssued", issued, ""},
		{"OKBeforeExpiry", exp.Add(-time.Second), ""},
		{"ErrAtExpiry", exp, "access token expired"},
		{"ErrAfterExpiry", exp.Add(time.Hour), "access token expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MustTokens(t, testSecret, "parley", "parley", tt.at).Parse(tok)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("parse at %v: %v", tt.at, err)
				}
				return
			}
			mustUnauthenticated(t, err, tt.want)
		})
	}
}

// mustUnauthenticated checks err is a chat EUnauthenticated error with a
// client-safe message.
func mustUnauthenticated(tb testing.TB, err error, message string) {
	tb.Helper()
	if err == nil {
		tb.Fatal("accepted, want an error")
	}
	ce, ok := err.(*chat.Error)
	if !ok || ce.Code != chat.EUnauthenticated || ce.Message != message {
		tb.Fatalf("error %#v, want %s %q", err, chat.EUnauthenticated, message)
	}
}

// TestTokensParseRejects: tokens we did not issue, or issued for another
// issuer or audience, or missing what we require, are refused.
func TestTokensParseRejects(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	tk := MustTokens(t, testSecret, "parley", "parley", now)
	user := uuid.NewString()
	valid := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"sub": user, "iss": "parley", "aud": "parley", "iat": now.Unix(),
			"exp": now.Add(5 * time.Minute).Unix(), "jti": uuid.NewString(),
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	issued, _, err := tk.Issue(user)
	if err != nil {
		t.Fatal(err)
	}
	dot := strings.LastIndexByte(issued, '.')
	fromIssuer := func(iss, aud string) string {
		tok, _, err := MustTokens(t, testSecret, iss, aud, now).Issue(user)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	otherPayload, _ := json.Marshal(valid(func(c jwt.MapClaims) { c["sub"] = uuid.NewString() }))
	sig := []byte(issued[dot+1:])
	// Change a character in the middle (the last may only carry padding
	// bits) to another base64url character.
	if sig[10] == 'A' {
		sig[10] = 'B'
	} else {
		sig[10] = 'A'
	}

	// The control: crafted like the rest, but valid.
	t.Run("OKCrafted", func(t *testing.T) {
		p, err := tk.Parse(MustSign(t, jwt.SigningMethodHS256, testSecret, valid(nil)))
		if err != nil || p.UserID != user {
			t.Fatalf("Parse = %+v, %v; want user %s", p, err, user)
		}
	})
	for _, tt := range []struct {
		name  string
		token string
	}{
		{"TamperedPayload", issued[:strings.IndexByte(issued, '.')+1] + base64.RawURLEncoding.EncodeToString(otherPayload) + issued[dot:]},
		{"TamperedSignature", issued[:dot+1] + string(sig)},
		{"NoSignature", issued[:dot+1]},
		{"OtherKey", MustSign(t, jwt.SigningMethodHS256, []byte("fedcba9876543210fedcba9876543210"), valid(nil))},
		{"EmptyKey", MustSign(t, jwt.SigningMethodHS256, []byte{}, valid(nil))},
		{"HS384", MustSign(t, jwt.SigningMethodHS384, testSecret, valid(nil))},
		{"HS512", MustSign(t, jwt.SigningMethodHS512, testSecret, valid(nil))},
		{"RS256", MustSign(t, jwt.SigningMethodRS256, rsaKey, valid(nil))},
		{"AlgNone", MustSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid(nil))},
		{"Expired", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }))},
		{"NoExpiry", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"ExpiryNotANumber", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }))},
		{"NotYetValid", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }))},
		{"WrongIssuer", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["iss"] = "not-parley" }))},
		{"NoIssuer", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"WrongAudience", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["aud"] = []string{"not-parley"} }))},
		{"NoAudience", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"IssuedForOtherIssuer", fromIssuer("other", "parley")},
		{"IssuedForOtherAudience", fromIssuer("parley", "other")},
		{"SubjectNotUUID", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["sub"] = "alice" }))},
		{"NoSubject", MustSign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"Empty", ""},
		{"NotAJWT", "not-a-jwt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tk.Parse(tt.token)
			if err == nil {
				t.Fatalf("accepted as %+v", p)
			}
			if chat.ErrorCode(err) != chat.EUnauthenticated {
				t.Fatalf("error %v, want %s", err, chat.EUnauthenticated)
			}
		})
	}
}

func TestRefreshToken(t *testing.T) {
	a, hashA, err := NewRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	b, hashB, err := NewRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || bytes.Equal(hashA, hashB) {
		t.Fatal("two refresh tokens are equal")
	}
	if raw, err := base64.RawURLEncoding.DecodeString(a); err != nil || len(raw) < 32 {
		t.Fatalf("refresh token %q: want at least 32 random bytes, base64url", a)
	}
	if !bytes.Equal(HashRefreshToken(a), hashA) || bytes.Contains(hashA, []byte(a)) {
		t.Fatal("a refresh token's hash is not how it is looked up")
	}
}

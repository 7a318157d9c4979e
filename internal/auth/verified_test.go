package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestVerifiedTokens: a token verified once is accepted again from the set
// until its expiry, and only that exact token is.
func TestVerifiedTokens(t *testing.T) {
	issued := time.Now().Truncate(time.Second)
	now := issued
	tk := MustTokens(t, testSecret, "parley", "parley", issued)
	tk.now = func() time.Time { return now }
	user := uuid.NewString()
	tok, exp, err := tk.Issue(user)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := tk.Parse(tok); err != nil || p.UserID != user {
		t.Fatalf("first parse: %+v, %v", p, err)
	}
	if _, ok := tk.verified.lookup(tok, now); !ok {
		t.Fatal("a verified token is not in the set")
	}
	// Flip one character of the signature, then of the claims.
	sig := []byte(tok)
	sig[len(sig)-2] ^= 'A' ^ 'B'
	claims := []byte(tok)
	claims[40] ^= 'A' ^ 'B'
	for _, tt := range []struct {
		name  string
		token string
		at    time.Time
		want  string // the error's message; "" for none
	}{
		{"OKAgain", tok, issued.Add(time.Minute), ""},
		{"OKJustBeforeExpiry", tok, exp.Add(-time.Nanosecond), ""},
		{"ErrOtherSignature", string(sig), issued, "invalid access token"},
		{"ErrOtherClaims", string(claims), issued, "invalid access token"},
		{"ErrAtExpiry", tok, exp, "access token expired"},
		{"ErrAfterExpiry", tok, exp.Add(time.Hour), "access token expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			p, err := tk.Parse(tt.token)
			if tt.want == "" {
				if err != nil || p.UserID != user || !p.ExpiresAt.Equal(exp) {
					t.Fatalf("parse: %+v, %v; want %s until %v", p, err, user, exp)
				}
				return
			}
			mustUnauthenticated(t, err, tt.want)
		})
	}
	if _, ok := tk.verified.lookup(tok, issued); ok {
		t.Error("an expired token stayed in the set")
	}
}

// TestVerifiedTokensBounded: the set never holds more than its bound.
func TestVerifiedTokensBounded(t *testing.T) {
	tk := MustTokens(t, testSecret, "parley", "parley", time.Now())
	for i := range maxVerifiedTokens + 10 {
		tok, _, err := tk.Issue(uuid.NewString())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Parse(tok); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if n := len(tk.verified.byText); n > maxVerifiedTokens {
			t.Fatalf("%d tokens in the set, bound %d", n, maxVerifiedTokens)
		}
	}
}

// BenchmarkParse: a token's first check against the next ones.
func BenchmarkParse(b *testing.B) {
	for _, verified := range []bool{false, true} {
		b.Run(fmt.Sprintf("verified=%v", verified), func(b *testing.B) {
			tk := MustTokens(b, testSecret, "parley", "parley", time.Now())
			tok, _, err := tk.Issue(uuid.NewString())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if !verified {
					clear(tk.verified.byText)
				}
				if _, err := tk.Parse(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

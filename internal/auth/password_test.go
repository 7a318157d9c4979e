package auth

import (
	"strings"
	"testing"
)

const phcPrefix = "$argon2id$v=19$m=19456,t=2,p=1$"

// MustHash hashes password.
func MustHash(tb testing.TB, password string) string {
	tb.Helper()
	h, err := HashPassword(password)
	if err != nil {
		tb.Fatalf("hash password: %v", err)
	}
	return h
}

func TestPassword(t *testing.T) {
	tests := []struct {
		name     string
		password string
		attempt  string
		want     bool
	}{
		{"OK", "correct horse battery", "correct horse battery", true},
		{"OKUnicode", "пароль-🔑-ü", "пароль-🔑-ü", true},
		{"OKLongest", strings.Repeat("p", 128), strings.Repeat("p", 128), true},
		{"ErrWrongPassword", "correct horse battery", "incorrect horse battery", false},
		{"ErrOtherCase", "correct horse battery", "Correct horse battery", false},
		{"ErrPrefix", "correct horse battery", "correct horse batter", false},
		{"ErrExtension", "correct horse battery", "correct horse battery ", false},
		{"ErrEmpty", "correct horse battery", "", false},
		{"ErrUnicodeNormalization", "caf\u00e9-latte", "cafe\u0301-latte", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash := MustHash(t, tt.password)
			if !strings.HasPrefix(hash, phcPrefix) {
				t.Fatalf("hash %q, want the PHC form starting %q", hash, phcPrefix)
			}
			if strings.Contains(hash, tt.password) {
				t.Fatalf("hash %q holds the password", hash)
			}
			ok, err := CheckPassword(hash, tt.attempt)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if ok != tt.want {
				t.Fatalf("CheckPassword(%q) = %v, want %v", tt.attempt, ok, tt.want)
			}
		})
	}
}

// TestHashPasswordSalted: the same password hashes differently each time,
// and each hash verifies.
func TestHashPasswordSalted(t *testing.T) {
	a, b := MustHash(t, "correct horse battery"), MustHash(t, "correct horse battery")
	if a == b {
		t.Fatalf("two hashes of one password are equal: %s", a)
	}
	for _, h := range []string{a, b} {
		if ok, err := CheckPassword(h, "correct horse battery"); !ok || err != nil {
			t.Fatalf("CheckPassword(%s) = %v, %v", h, ok, err)
		}
	}
}

// TestCheckPasswordMalformed: a stored hash that is not ours is an error,
// never a match.
func TestCheckPasswordMalformed(t *testing.T) {
	good := MustHash(t, "correct horse battery")
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=...,t=...,p=..., salt, key
	join := func(edit func(p []string)) string {
		p := append([]string(nil), parts...)
		edit(p)
		return strings.Join(p, "$")
	}
	for _, tt := range []struct{ name, encoded string }{
		{"Empty", ""},
		{"Plain", "correct horse battery"},
		{"Bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"Argon2i", join(func(p []string) { p[1] = "argon2i" })},
		{"OtherVersion", join(func(p []string) { p[2] = "v=16" })},
		{"BadParameters", join(func(p []string) { p[3] = "m=lots,t=2,p=1" })},
		{"BadSalt", join(func(p []string) { p[4] = "!!!" })},
		{"BadKey", join(func(p []string) { p[5] = "!!!" })},
		{"MissingPart", strings.Join(parts[:5], "$")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := CheckPassword(tt.encoded, "correct horse battery")
			if ok || err == nil {
				t.Fatalf("CheckPassword(%q) = %v, %v; want false and an error", tt.encoded, ok, err)
			}
		})
	}
}

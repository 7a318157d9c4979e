package chat

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits from the contract.
const (
	UsernameMin, UsernameMax       = 3, 32
	PasswordMin, PasswordMax       = 8, 128
	DisplayNameMin, DisplayNameMax = 1, 64
	RoomNameMin, RoomNameMax       = 1, 64
	TopicMax                       = 512
	BodyMin, BodyMax               = 1, 4000
	ClientIDMax                    = 64
	ReactionKeyMin, ReactionKeyMax = 1, 32
	LimitMin, LimitMax, LimitDef   = 1, 100, 50
)

// NormalizeUsername folds a username to lower case and checks it against
// [a-z0-9_.-]{3,32}.
func NormalizeUsername(field, s string) (string, error) {
	s = strings.ToLower(s)
	n := utf8.RuneCountInString(s)
	if n < UsernameMin || n > UsernameMax {
		return "", Invalid(field, "username must be %d to %d characters", UsernameMin, UsernameMax)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return "", Invalid(field, "username may only contain a-z, 0-9, '_', '.' and '-'")
		}
	}
	return s, nil
}

// CheckText checks a free-text field: valid UTF-8, no NUL, between min and
// max code points, and (when min > 0) not all white space.
func CheckText(field, s string, min, max int) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Invalid(field, "must not contain NUL characters")
	}
	n := utf8.RuneCountInString(s)
	if n < min || n > max {
		return Invalid(field, "must be %d to %d characters", min, max)
	}
	if min > 0 && strings.TrimFunc(s, unicode.IsSpace) == "" {
		return Invalid(field, "must not be only white space")
	}
	return nil
}

// CheckReactionKey checks a reaction key: an emoji or a short code of 1-32
// code points, none of them white space or a control character (by
// Unicode's tables), and not "." or "..", which a URL path cannot carry.
func CheckReactionKey(field, key string) error {
	if !utf8.ValidString(key) {
		return Invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(key); n < ReactionKeyMin || n > ReactionKeyMax {
		return Invalid(field, "a reaction key must be %d to %d characters", ReactionKeyMin, ReactionKeyMax)
	}
	for _, r := range key {
		if unicode.Is(unicode.White_Space, r) || unicode.IsControl(r) {
			return Invalid(field, "a reaction key must not contain white space or control characters")
		}
	}
	if key == "." || key == ".." {
		return Invalid(field, `a reaction key must not be "." or ".."`)
	}
	return nil
}

package chat_test

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
)

// TestCheckReactionKey: keys are 1-32 code points with no white space or
// control character by Unicode's tables, and not "." or "..".
func TestCheckReactionKey(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"Emoji", "👍", true},
		{"ZWJSequence", "👩‍👩‍👧", true},
		{"VariationSelector", "❤️", true},
		{"TagSequenceFlag", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", true},
		{"ShortCode", ":tada:", true},
		{"ThreeDots", "...", true},
		{"DotInside", "a.b", true},
		{"Longest", strings.Repeat("x", 32), true},
		{"LongestFourByte", strings.Repeat("😀", 32), true},
		{"Empty", "", false},
		{"TooLong", strings.Repeat("x", 33), false},
		{"Dot", ".", false},
		{"DotDot", "..", false},
		{"Space", "a b", false},
		{"Newline", "a\n", false},
		{"NoBreakSpace", "\u00a0", false},
		{"OghamSpace", "\u1680", false},
		{"IdeographicSpace", "\u3000", false},
		{"NextLine", "\u0085", false},
		{"NUL", "\x00", false},
		{"Escape", "\x1b[31m", false},
		{"DEL", "\x7f", false},
		{"InvalidUTF8", "\xc3", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := chat.CheckReactionKey("path.key", tc.key)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckReactionKey(%q) = %v, want ok %v", tc.key, err, tc.ok)
			}
			if err != nil && chat.ErrorCode(err) != chat.EInvalid {
				t.Fatalf("code %q, want invalid", chat.ErrorCode(err))
			}
		})
	}
}

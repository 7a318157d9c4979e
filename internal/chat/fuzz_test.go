package chat_test

import (
	"encoding/binary"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/parley-chat/parley/internal/chat"
)

// The fuzz targets below run in make fuzz (one go test -fuzz per target);
// under plain go test they run their seeds as regression tests.

var cursorText = regexp.MustCompile(`^[A-Za-z0-9_-]{1,512}$`)

// FuzzCursorDecode feeds any text to the user stream cursor decoder: it
// never panics, refuses with EInvalid at the field, and what it accepts is
// exactly what Encode makes of the cursor it decoded.
func FuzzCursorDecode(f *testing.F) {
	codec := chat.NewCursorCodec([]byte("0123456789abcdef0123456789abcdef"), "cluster")
	f.Add(codec.Encode(chat.UserCursor{Horizon: 7}))
	f.Add(codec.Encode(chat.UserCursor{Horizon: 1 << 40, Rooms: []chat.RoomPosition{{Ordinal: 1, Seq: 5}, {Ordinal: 9, Seq: 1 << 33}}}))
	f.Add("AdQFAQcMsR3pVtqKnS0xV0Q")
	f.Add("")
	f.Add(strings.Repeat("A", 513))
	f.Add("AdQF+/==")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		cur, err := codec.Decode("query.after", s)
		if err != nil {
			var ce *chat.Error
			if chat.ErrorCode(err) != chat.EInvalid || !asError(err, &ce) || ce.Field != "query.after" {
				t.Fatalf("Decode(%q): %v, want EInvalid at query.after", s, err)
			}
			return
		}
		if got := codec.Encode(cur); got != s {
			t.Fatalf("Decode(%q) = %+v, which encodes as %q", s, cur, got)
		}
	})
}

func asError(err error, target **chat.Error) bool {
	e, ok := err.(*chat.Error)
	*target = e
	return ok
}

// FuzzCursorRoundTrip encodes cursors built from fuzz data: the text is in
// the contract's alphabet and length when the cursor fits, decodes back to
// the cursor, does not decode under another cluster's key, and no change
// of one character of it decodes.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(uint64(7), []byte{1, 5, 3, 9})
	f.Add(uint64(1<<63), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1})
	codec := chat.NewCursorCodec([]byte("0123456789abcdef0123456789abcdef"), "cluster")
	other := chat.NewCursorCodec([]byte("0123456789abcdef0123456789abcdef"), "another cluster")
	f.Fuzz(func(t *testing.T, horizon uint64, raw []byte) {
		cur := chat.UserCursor{Horizon: horizon}
		size := chat.CursorFixedLen(horizon)
		ord := int64(0)
		for len(raw) > 0 {
			step, n := binary.Uvarint(raw)
			if n <= 0 {
				break
			}
			raw = raw[n:]
			seq, n := binary.Uvarint(raw)
			if n <= 0 {
				break
			}
			raw = raw[n:]
			ord += int64(step%(1<<40)) + 1
			p := chat.RoomPosition{Ordinal: ord, Seq: int64(seq % (1 << 62))}
			if !chat.CursorFits(size + chat.CursorRoomLen(p)) {
				break
			}
			size += chat.CursorRoomLen(p)
			cur.Rooms = append(cur.Rooms, p)
		}
		s := codec.Encode(cur)
		if !cursorText.MatchString(s) {
			t.Fatalf("cursor %+v encodes as %q: not 1-512 of [A-Za-z0-9_-]", cur, s)
		}
		got, err := codec.Decode("after", s)
		if err != nil || got.Horizon != cur.Horizon || len(got.Rooms) != len(cur.Rooms) {
			t.Fatalf("%q decodes as %+v, %v; want %+v", s, got, err, cur)
		}
		for i := range cur.Rooms {
			if got.Rooms[i] != cur.Rooms[i] {
				t.Fatalf("%q decodes as %+v, want %+v", s, got, cur)
			}
		}
		if _, err := other.Decode("after", s); err == nil {
			t.Fatalf("%q decodes under another cluster's key", s)
		}
		i := int(horizon % uint64(len(s)))
		for _, c := range []byte{'A', 'z', '0', '_'} {
			if s[i] == c {
				continue
			}
			if _, err := codec.Decode("after", s[:i]+string(c)+s[i+1:]); err == nil {
				t.Fatalf("%q with character %d changed to %q decodes", s, i, c)
			}
		}
	})
}

// FuzzReactionKey checks the reaction key rule on any text: what it
// accepts is 1-32 code points of valid UTF-8, with no white space or
// control characters, and not "." or "..".
func FuzzReactionKey(f *testing.F) {
	for _, s := range []string{"👍", "+1", ".", "..", "...", " ", "a b", "\u0085", "\u200b", "\xff", strings.Repeat("x", 33), "👨‍👩‍👧"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := chat.CheckReactionKey("path.key", key)
		if err != nil {
			if chat.ErrorCode(err) != chat.EInvalid {
				t.Fatalf("CheckReactionKey(%q): %v, want EInvalid", key, err)
			}
			return
		}
		n := utf8.RuneCountInString(key)
		if !utf8.ValidString(key) || n < chat.ReactionKeyMin || n > chat.ReactionKeyMax || key == "." || key == ".." ||
			strings.ContainsFunc(key, func(r rune) bool { return unicode.Is(unicode.White_Space, r) || unicode.IsControl(r) }) {
			t.Fatalf("CheckReactionKey accepted %q", key)
		}
	})
}

var usernameRule = regexp.MustCompile(`^[a-z0-9_.-]{3,32}$`)

// FuzzNormalizeUsername: what it accepts comes out lower case in the
// contract's alphabet, and normalizing again changes nothing.
func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{"Alice", "al", "ALICE_1.x-y", "ſtrasse", "K\u212aelvin", "ǅemal", strings.Repeat("a", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := chat.NormalizeUsername("body.username", s)
		if err != nil {
			return
		}
		if !usernameRule.MatchString(got) {
			t.Fatalf("NormalizeUsername(%q) = %q", s, got)
		}
		if again, err := chat.NormalizeUsername("body.username", got); err != nil || again != got {
			t.Fatalf("NormalizeUsername(%q) = %q, %v", got, again, err)
		}
	})
}

// FuzzCheckText: accepted text is valid UTF-8 without NUL, of the length
// asked, and not all white space.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"hi", " \u3000 ", "a\x00b", "\xed\xa0\x80", "\u00a0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if chat.CheckText("body.body", s, chat.BodyMin, chat.BodyMax) != nil {
			return
		}
		n := utf8.RuneCountInString(s)
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 || n < chat.BodyMin || n > chat.BodyMax || strings.TrimFunc(s, unicode.IsSpace) == "" {
			t.Fatalf("CheckText accepted %q", s)
		}
	})
}

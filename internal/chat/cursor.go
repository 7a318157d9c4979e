package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// UserCursor is a user stream's position in every room at once: for each
// room listed in Rooms, the stream has the user's events up to Seq; for
// every other room, up to the room's horizon base (the last seq whose hx
// is below Horizon; see the 00005 migration). Events outside the user's
// membership periods are never the user's, whatever the position.
type UserCursor struct {
	// Horizon is an xid8 value no larger than pg_snapshot_xmin of a past
	// snapshot, so each room's base under it never changes.
	Horizon uint64
	// Rooms are the rooms whose position differs from their base, by
	// ascending ordinal.
	Rooms []RoomPosition
}

// RoomPosition is a room's position in a user cursor.
type RoomPosition struct {
	Ordinal int64 // the room's small number (rooms.ordinal)
	Seq     int64
}

// MaxCursorLen bounds an encoded cursor: the contract's 512 characters of
// [A-Za-z0-9_-], that is 384 bytes before base64.
const MaxCursorLen = 512

const (
	cursorVersion = 1
	cursorMACLen  = 12 // 96 bits of HMAC-SHA256
	maxCursorRaw  = MaxCursorLen / 4 * 3
)

// CursorCodec encodes user cursors as unpadded base64url of a version byte,
// uvarint(Horizon), then uvarint(ordinal), uvarint(seq) per listed room,
// and a MAC over all of it: a cursor this deployment did not issue (edited,
// forged, or from another database cluster) does not decode.
type CursorCodec struct {
	key []byte
}

// NewCursorCodec derives the cursor key from a deployment secret (the JWT
// secret) and the database cluster's identity, so a cursor issued against
// another cluster (a restore, whose transaction ids start over) is refused.
func NewCursorCodec(secret []byte, clusterID string) *CursorCodec {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("parley user stream cursor v1\x00" + clusterID))
	return &CursorCodec{key: m.Sum(nil)}
}

// CursorFixedLen is the encoded size, before base64, of a cursor with no
// rooms listed; CursorRoomLen adds one room.
func CursorFixedLen(horizon uint64) int { return 1 + uvarintLen(horizon) + cursorMACLen }

// CursorRoomLen is what listing one room adds to a cursor before base64.
func CursorRoomLen(p RoomPosition) int {
	return uvarintLen(uint64(p.Ordinal)) + uvarintLen(uint64(p.Seq))
}

// CursorFits reports whether a cursor of raw bytes before base64 stays
// within MaxCursorLen characters.
func CursorFits(raw int) bool { return raw <= maxCursorRaw }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Encode returns the cursor's text; Rooms must be sorted by ordinal.
func (c *CursorCodec) Encode(cur UserCursor) string {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*(1+2*len(cur.Rooms))+cursorMACLen)
	b = append(b, cursorVersion)
	b = binary.AppendUvarint(b, cur.Horizon)
	for _, r := range cur.Rooms {
		b = binary.AppendUvarint(b, uint64(r.Ordinal))
		b = binary.AppendUvarint(b, uint64(r.Seq))
	}
	b = append(b, c.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *CursorCodec) mac(b []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(b)
	return m.Sum(nil)[:cursorMACLen]
}

// cursorAlphabet reports whether s holds only [A-Za-z0-9_-], the alphabet of
// the cursors Encode makes. The base64 decoder alone is not enough: it skips
// \r and \n, so a cursor with line breaks in it would decode.
func cursorAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Decode parses a cursor made by Encode. Anything else, including a cursor
// signed with another key, is EInvalid at field.
func (c *CursorCodec) Decode(field, s string) (UserCursor, error) {
	bad := Invalid(field, "cursor is not one this server issued")
	if len(s) == 0 || len(s) > MaxCursorLen || !cursorAlphabet(s) {
		return UserCursor{}, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 1+1+cursorMACLen {
		return UserCursor{}, bad
	}
	body, sum := b[:len(b)-cursorMACLen], b[len(b)-cursorMACLen:]
	if !hmac.Equal(sum, c.mac(body)) || body[0] != cursorVersion {
		return UserCursor{}, bad
	}
	body = body[1:]
	var cur UserCursor
	var n int
	if cur.Horizon, n = binary.Uvarint(body); n <= 0 {
		return UserCursor{}, bad
	}
	body = body[n:]
	for len(body) > 0 {
		ord, n := binary.Uvarint(body)
		if n <= 0 {
			return UserCursor{}, bad
		}
		body = body[n:]
		seq, n := binary.Uvarint(body)
		if n <= 0 || ord > 1<<62 || seq > 1<<62 {
			return UserCursor{}, bad
		}
		body = body[n:]
		cur.Rooms = append(cur.Rooms, RoomPosition{Ordinal: int64(ord), Seq: int64(seq)})
	}
	for i := 1; i < len(cur.Rooms); i++ {
		if cur.Rooms[i].Ordinal <= cur.Rooms[i-1].Ordinal {
			return UserCursor{}, bad // Encode lists each room once, in order
		}
	}
	return cur, nil
}

package chat_test

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
)

func TestCursorRoundTrip(t *testing.T) {
	codec := chat.NewCursorCodec([]byte("a secret of at least thirty-two bytes"), "7714275461756904974")
	many := chat.UserCursor{Horizon: 1 << 40}
	for i := range 40 {
		many.Rooms = append(many.Rooms, chat.RoomPosition{Ordinal: int64(100000 + 7*i), Seq: int64(1<<20 + i)})
	}
	tests := []struct {
		name string
		cur  chat.UserCursor
	}{
		{"HorizonOnly", chat.UserCursor{Horizon: 3}},
		{"OneRoom", chat.UserCursor{Horizon: 724, Rooms: []chat.RoomPosition{{Ordinal: 1, Seq: 1}}}},
		{"LargeValues", chat.UserCursor{Horizon: 1<<63 + 5, Rooms: []chat.RoomPosition{{Ordinal: 1 << 61, Seq: 1 << 62}}}},
		{"FortyRooms", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := codec.Encode(tt.cur)
			if strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
				t.Fatalf("cursor %q holds characters outside [A-Za-z0-9_-]", s)
			}
			raw := chat.CursorFixedLen(tt.cur.Horizon)
			for _, r := range tt.cur.Rooms {
				raw += chat.CursorRoomLen(r)
			}
			if !chat.CursorFits(raw) || len(s) > chat.MaxCursorLen {
				t.Fatalf("cursor of %d characters (%d bytes) does not fit", len(s), raw)
			}
			if got := base64.RawURLEncoding.DecodedLen(len(s)); got != raw {
				t.Fatalf("encoded %d bytes, sizes say %d", got, raw)
			}
			got, err := codec.Decode("query.after", s)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.cur) {
				t.Fatalf("decoded %+v, want %+v", got, tt.cur)
			}
		})
	}
}

func TestCursorRefused(t *testing.T) {
	secret := []byte("a secret of at least thirty-two bytes")
	codec := chat.NewCursorCodec(secret, "cluster-1")
	good := codec.Encode(chat.UserCursor{Horizon: 900, Rooms: []chat.RoomPosition{{Ordinal: 4, Seq: 17}, {Ordinal: 9, Seq: 2}}})
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name, cursor string
		codec        *chat.CursorCodec
	}{
		{"Empty", "", codec},
		{"NotBase64", "not a cursor!", codec},
		{"Padded", good + "=", codec},
		{"CarriageReturn", good[:5] + "\r" + good[5:], codec},
		{"Newline", good[:5] + "\n" + good[5:], codec},
		{"Seq", "42", codec},
		{"TooShort", base64.RawURLEncoding.EncodeToString(raw[:8]), codec},
		{"TooLong", strings.Repeat("A", chat.MaxCursorLen+1), codec},
		{"TamperedHorizon", flip(1), codec},
		{"TamperedSeq", flip(4), codec},
		{"TamperedMAC", flip(len(raw) - 1), codec},
		{"Truncated", base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]), codec},
		{"OtherSecret", good, chat.NewCursorCodec([]byte("another secret of thirty-two bytes!"), "cluster-1")},
		{"OtherCluster", good, chat.NewCursorCodec(secret, "cluster-2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.codec.Decode("header.Last-Event-ID", tt.cursor)
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != chat.EInvalid || ce.Field != "header.Last-Event-ID" {
				t.Fatalf("decode %q: %v, want EInvalid at header.Last-Event-ID", tt.cursor, err)
			}
		})
	}
	// A well-signed cursor whose rooms are out of order was not made by
	// Encode either.
	unsorted := codec.Encode(chat.UserCursor{Horizon: 5, Rooms: []chat.RoomPosition{{Ordinal: 9, Seq: 1}, {Ordinal: 4, Seq: 1}}})
	if _, err := codec.Decode("query.after", unsorted); err == nil {
		t.Error("decoded a cursor listing rooms out of order")
	}
}

package postgres

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
)

func TestSignalPayloads(t *testing.T) {
	room, user := uuid.NewString(), uuid.NewString()
	tests := []struct {
		name string
		sigs []chat.Signal
	}{
		{"Typing", []chat.Signal{{Type: chat.EventTyping, RoomID: room, UserID: user}}},
		{"MemberRead", []chat.Signal{{Type: chat.EventMemberRead, RoomID: room, UserID: user, LastReadSeq: 42}}},
		{"Presence", []chat.Signal{{Type: chat.EventPresence, UserID: user, Online: true}, {Type: chat.EventPresence, UserID: room}}},
		{"Many", func() []chat.Signal {
			var sigs []chat.Signal
			for i := range 1000 {
				sigs = append(sigs, chat.Signal{Type: chat.EventMemberRead, RoomID: room, UserID: uuid.NewString(), LastReadSeq: int64(i)})
			}
			return sigs
		}()},
	}
	stamp := time.UnixMicro(1_800_000_000_000_000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			for _, s := range tt.sigs {
				lines = append(lines, encodeSignal(s))
			}
			var got []chat.Signal
			for _, p := range splitPayloads(lines) {
				// What pg_notify sends: the stamp line, then the lines.
				payload := strconv.FormatInt(stamp.UnixMicro(), 10) + "\n" + p
				if len(payload) >= 8000 {
					t.Fatalf("payload of %d bytes", len(payload))
				}
				at, sigs, err := DecodeSignals(payload)
				if err != nil {
					t.Fatal(err)
				}
				if !at.Equal(stamp) {
					t.Fatalf("stamp %v, want %v", at, stamp)
				}
				got = append(got, sigs...)
			}
			if len(got) != len(tt.sigs) {
				t.Fatalf("%d signals back, want %d", len(got), len(tt.sigs))
			}
			for i := range got {
				if got[i] != tt.sigs[i] {
					t.Fatalf("signal %d: %+v, want %+v", i, got[i], tt.sigs[i])
				}
			}
		})
	}
	t.Run("ErrBad", func(t *testing.T) {
		for _, p := range []string{"", "x\nt a b", "1\nt a", "1\nr a b c", "1\np a 2", "1\nq a b", "-5\nt a b"} {
			if _, _, err := DecodeSignals(p); err == nil {
				t.Errorf("%q decoded", p)
			}
		}
		if _, _, err := DecodeSignals(strings.Repeat("1", 3)); err != nil {
			t.Errorf("a stamp alone: %v", err)
		}
	})
}

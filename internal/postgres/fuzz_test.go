package postgres_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/postgres"
)

// FuzzDecodeNotification feeds any payload to the NOTIFY decoder, as a
// listener would get from the channel: it never panics, and whatever it
// accepts has a positive seq and survives encoding and decoding again
// unchanged.
func FuzzDecodeNotification(f *testing.F) {
	ev := chat.Event{RoomID: "0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d", Seq: 42, Type: chat.EventMessage,
		SubjectID: "1e2f3a4b-5d2f-4a8b-9c7d-0b9a3c1e5c6d", Data: []byte(`{"body":"hi\nthere"}`), CommittedAt: time.UnixMicro(1700000000000000)}
	f.Add(postgres.EncodeNotification(ev))
	ev.Data = bytes.Repeat([]byte("x"), 8000) // announced by reference
	f.Add(postgres.EncodeNotification(ev))
	f.Add("r 1 message s")
	f.Add("r -1 message s 5")
	f.Add("r 1 message s 0\n")
	f.Add("\n\n")
	f.Add("r  1 message s 5")
	f.Fuzz(func(t *testing.T, payload string) {
		ev, inline, err := postgres.DecodeNotification(payload)
		if err != nil {
			return
		}
		if ev.Seq <= 0 {
			t.Fatalf("%q decoded with seq %d", payload, ev.Seq)
		}
		if !inline && ev.Data != nil {
			t.Fatalf("%q: a reference carried data %q", payload, ev.Data)
		}
		if ev.CommittedAt.IsZero() {
			// An older replica's header, without committed_us: this
			// replica's encoding always has one.
			ev.CommittedAt = time.UnixMicro(1)
		}
		again, inline2, err := postgres.DecodeNotification(postgres.EncodeNotification(ev))
		if err != nil {
			t.Fatalf("%q decoded as %+v, whose encoding does not decode: %v", payload, ev, err)
		}
		if inline && !inline2 && len(ev.Data) > 0 {
			return // re-encoding a header longer than the original may move it out of line
		}
		if again.RoomID != ev.RoomID || again.Seq != ev.Seq || again.Type != ev.Type || again.SubjectID != ev.SubjectID ||
			!again.CommittedAt.Equal(ev.CommittedAt) || inline2 && !bytes.Equal(again.Data, ev.Data) {
			t.Fatalf("%q decoded as %+v, then as %+v", payload, ev, again)
		}
	})
}

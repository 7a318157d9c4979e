package postgres

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
)

func TestEncodeBatches(t *testing.T) {
	room, user := uuid.NewString(), uuid.NewString()
	at := time.Now().Truncate(time.Microsecond)
	var evs []chat.Event
	for i := range 100 {
		data := []byte(`{"body":"message ` + strconv.Itoa(i) + ` ` + strings.Repeat("x", i*7) + `"}`)
		switch i {
		case 10:
			data = bytes.Repeat([]byte("y"), 8000) // too big: a reference
		case 20:
			data = []byte{}
		}
		ev := chat.Event{RoomID: room, Seq: int64(i + 1), Type: chat.EventMessage, SubjectID: user, Data: data, CommittedAt: at}
		if i == 30 {
			ev.SubjectID, ev.Type = "", chat.EventRoomUpdated
		}
		evs = append(evs, ev)
	}
	payloads := encodeBatches(evs)
	if len(payloads) < 2 {
		t.Fatalf("%d payloads; want the events spread over several", len(payloads))
	}
	var got []chat.Event
	for _, p := range payloads {
		if len(p) >= 8000 {
			t.Errorf("payload of %d bytes; NOTIFY takes under 8000", len(p))
		}
		dec, err := DecodeAnnouncement(p)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		got = append(got, dec...)
	}
	if len(got) != len(evs) {
		t.Fatalf("decoded %d events, want %d", len(got), len(evs))
	}
	for i, want := range evs {
		if i == 10 {
			want.Data = nil
		}
		g := got[i]
		if g.RoomID != want.RoomID || g.Seq != want.Seq || g.Type != want.Type || g.SubjectID != want.SubjectID ||
			!g.CommittedAt.Equal(want.CommittedAt) || !bytes.Equal(g.Data, want.Data) || (g.Data == nil) != (want.Data == nil) {
			t.Errorf("event %d: got %+v, want %+v", i, g, want)
		}
	}

	t.Run("SingleEventPayload", func(t *testing.T) {
		// As replicas from before this one announce from inside an
		// event's transaction: a rolling upgrade mixes them with batches.
		ev := chat.Event{RoomID: room, Seq: 7, Type: chat.EventMemberJoined, SubjectID: user, Data: []byte(`{}`), CommittedAt: at}
		dec, err := DecodeAnnouncement(EncodeNotification(ev))
		if err != nil || len(dec) != 1 || dec[0].Seq != 7 || string(dec[0].Data) != `{}` {
			t.Errorf("got %+v, %v", dec, err)
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, p := range []string{
			"*" + room + " 1 message " + user + " 1 5\n{}",   // length past the end
			"*" + room + " 1 message " + user + " 1\n{}",     // no length
			"*" + room + " 0 message " + user + " 1 2\n{}",   // seq 0
			"*" + room + " 1 message " + user + " 1 2",       // no header end
			"*" + room + " 1 message " + user + " x 2\n{}",   // committed_us
			"*" + room + " 1 message " + user + " 1 -2\n{}",  // length
			"*" + room + " 1 message " + user + " 1 2\n{}xy", // trailing bytes
		} {
			if _, err := DecodeAnnouncement(p); err == nil {
				t.Errorf("DecodeAnnouncement(%.70q) succeeded", p)
			}
		}
	})
}

func TestRoomOrder(t *testing.T) {
	const a, b = "room-a", "room-b"
	ev := func(room string, seq int64) chat.Event { return chat.Event{RoomID: room, Seq: seq, Data: []byte("x")} }
	ref := func(room string, seq int64) chat.Event { return chat.Event{RoomID: room, Seq: seq} }
	// after marks e as handed on after a run of missed events from seq from.
	after := func(from int64, e chat.Event) chat.Event { e.MissedFrom = from; return e }
	type step struct {
		add     *chat.Event
		covered *chat.Event   // MissedFrom: the sweep window's first seq
		expire  time.Duration // since the start
	}
	add := func(e chat.Event) step { return step{add: &e} }
	cov := func(room string, first, seq int64) step { e := after(first, ref(room, seq)); return step{covered: &e} }
	tests := []struct {
		name  string
		steps []step
		want  []chat.Event
	}{
		{"InOrder", []step{add(ev(a, 3)), add(ev(a, 4)), add(ev(b, 1)), add(ev(a, 5))},
			[]chat.Event{ev(a, 3), ev(a, 4), ev(b, 1), ev(a, 5)}},
		{"GapFills", []step{add(ev(a, 3)), add(ev(a, 5)), add(ev(a, 6)), add(ev(b, 9)), add(ev(a, 4))},
			[]chat.Event{ev(a, 3), ev(b, 9), ev(a, 4), ev(a, 5), ev(a, 6)}},
		{"Duplicates", []step{add(ev(a, 3)), add(ev(a, 3)), add(ev(a, 5)), add(ev(a, 5)), add(ev(a, 4)), add(ev(a, 4))},
			[]chat.Event{ev(a, 3), ev(a, 4), ev(a, 5)}},
		{"GapNeverFills", []step{add(ev(a, 3)), add(ev(a, 5)), add(ev(a, 7)), {expire: holdMax / 2}, {expire: holdMax}, add(ev(a, 4)), add(ev(a, 8))},
			[]chat.Event{ev(a, 3), after(4, ev(a, 5)), after(6, ev(a, 7)), ev(a, 8)}},
		{"HeldRunExpires", []step{add(ev(a, 3)), add(ev(a, 6)), add(ev(a, 7)), {expire: holdMax}},
			[]chat.Event{ev(a, 3), after(4, ev(a, 6)), ev(a, 7)}},
		{"SweepCoversHeld", []step{add(ev(a, 3)), add(ev(a, 5)), add(ev(a, 7)), cov(a, 4, 5), add(ev(a, 6))},
			[]chat.Event{ev(a, 3), after(4, ref(a, 5)), ev(a, 6), ev(a, 7)}},
		{"SweepHeardAlready", []step{add(ev(a, 3)), add(ev(a, 4)), cov(a, 4, 4), cov(a, 1, 2)},
			[]chat.Event{ev(a, 3), ev(a, 4)}},
		{"SweepUnknownRoom", []step{cov(b, 10, 12), add(ev(b, 12)), add(ev(b, 13))},
			[]chat.Event{after(10, ref(b, 12)), ev(b, 13)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []chat.Event
			o := newRoomOrder(holdMax, func(e chat.Event) { got = append(got, e) })
			start := time.Now()
			for _, s := range tt.steps {
				switch {
				case s.add != nil:
					o.add(*s.add, start)
				case s.covered != nil:
					o.covered(s.covered.RoomID, s.covered.MissedFrom, s.covered.Seq, start)
				default:
					o.expire(start.Add(s.expire))
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("handed on %v, want %v", seqs(got), seqs(tt.want))
			}
			for i := range got {
				if got[i].RoomID != tt.want[i].RoomID || got[i].Seq != tt.want[i].Seq || (got[i].Data == nil) != (tt.want[i].Data == nil) ||
					got[i].MissedFrom != tt.want[i].MissedFrom {
					t.Fatalf("handed on %v, want %v", seqs(got), seqs(tt.want))
				}
			}
			if o.holding < 0 {
				t.Errorf("holding = %d", o.holding)
			}
		})
	}
}

func seqs(evs []chat.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.RoomID + "/" + strconv.FormatInt(e.Seq, 10)
		if e.Data == nil {
			out[i] += "(ref)"
		}
		if e.MissedFrom > 0 {
			out[i] += "(missed from " + strconv.FormatInt(e.MissedFrom, 10) + ")"
		}
	}
	return out
}

// FuzzDecodeAnnouncement feeds any payload to the announcement decoder, as
// a listener would get it from the channel: it never panics, whatever it
// accepts has positive seqs, and a batch survives encoding and decoding
// again unchanged.
func FuzzDecodeAnnouncement(f *testing.F) {
	room, user := "0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d", "1e2f3a4b-5d2f-4a8b-9c7d-0b9a3c1e5c6d"
	at := time.UnixMicro(1700000000000000)
	evs := []chat.Event{
		{RoomID: room, Seq: 1, Type: chat.EventMessage, SubjectID: user, Data: []byte(`{"body":"hi\nthere"}`), CommittedAt: at},
		{RoomID: room, Seq: 2, Type: chat.EventRoomUpdated, Data: bytes.Repeat([]byte("x"), 8000), CommittedAt: at},
		{RoomID: room, Seq: 3, Type: chat.EventMessage, SubjectID: user, Data: []byte{}, CommittedAt: at},
	}
	for _, p := range encodeBatches(evs) {
		f.Add(p)
	}
	f.Add(EncodeNotification(evs[0]))
	f.Add("*r 1 message s 1 3\nabc")
	f.Add("*r 1 message s 1 -1\n")
	f.Add("*r 1 message s 1 99\nab")
	f.Add("*\n")
	f.Fuzz(func(t *testing.T, payload string) {
		dec, err := DecodeAnnouncement(payload)
		if err != nil {
			return
		}
		for _, ev := range dec {
			if ev.Seq <= 0 {
				t.Fatalf("%q decoded with seq %d", payload, ev.Seq)
			}
		}
		if payload == "" || payload[0] != batchMark {
			return // a single-event payload: FuzzDecodeNotification's
		}
		var again []chat.Event
		for _, p := range encodeBatches(dec) {
			d, err := DecodeAnnouncement(p)
			if err != nil {
				t.Fatalf("%q decoded as %+v, whose encoding does not decode: %v", payload, dec, err)
			}
			again = append(again, d...)
		}
		if len(again) != len(dec) {
			t.Fatalf("%q: %d events, then %d", payload, len(dec), len(again))
		}
		for i := range dec {
			a, b := dec[i], again[i]
			if a.RoomID != b.RoomID || a.Seq != b.Seq || a.Type != b.Type || a.SubjectID != b.SubjectID {
				t.Fatalf("%q: event %d decoded as %+v, then as %+v", payload, i, a, b)
			}
			if b.Data != nil && !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("%q: event %d data %q, then %q", payload, i, a.Data, b.Data)
			}
		}
	})
}

package stream

import (
	"log/slog"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// mustSignals pops what sub has queued of ephemeral events.
func mustSignals(sub interface{ NextSignal() (*chat.Event, bool) }) []string {
	var out []string
	for ev, ok := sub.NextSignal(); ok; ev, ok = sub.NextSignal() {
		out = append(out, string(ev.Type)+" "+ev.SubjectID)
	}
	return out
}

func TestEphemeral(t *testing.T) {
	hub := NewHub(nil, slog.New(slog.DiscardHandler), 0)
	defer hub.Close()
	eph := NewEphemeral(hub)
	const roomA, roomB = "room-a", "room-b"
	ana, _ := hub.Subscribe(roomA, "ana", 0)
	bobA, _ := hub.Subscribe(roomA, "bob", 0)
	early, _ := hub.Subscribe(roomA, "cal", 0) // never live
	bobUser, _ := hub.SubscribeUser("bob")
	_ = bobUser.AddRoom(roomA, 0)
	_ = bobUser.AddRoom(roomB, 0)
	for _, s := range []interface{ GoLive() }{ana, bobA, bobUser} {
		s.GoLive()
	}
	at := time.UnixMicro(1_800_000_000_000_000)

	t.Run("TypingNotToSelfNorBeforeLive", func(t *testing.T) {
		eph.DeliverSignals(at, []chat.Signal{{Type: chat.EventTyping, RoomID: roomA, UserID: "ana"}}, nil)
		if got := mustSignals(ana); len(got) != 0 {
			t.Fatalf("ana heard her own typing: %v", got)
		}
		if got := mustSignals(early); len(got) != 0 {
			t.Fatalf("a stream before ready heard %v", got)
		}
		for _, s := range []interface{ NextSignal() (*chat.Event, bool) }{bobA, bobUser} {
			if got := mustSignals(s); len(got) != 1 || got[0] != "typing ana" {
				t.Fatalf("bob heard %v, want one typing", got)
			}
		}
	})

	t.Run("TypingDedupedByStamp", func(t *testing.T) {
		tests := []struct {
			after time.Duration
			want  int
		}{
			{time.Second, 0},                       // within the interval of the one above
			{-time.Second, 0},                      // stamped before it, still within
			{chat.TypingInterval, 1},               // the next window
			{chat.TypingInterval + time.Second, 0}, // within that one
		}
		for _, tt := range tests {
			eph.DeliverSignals(at.Add(tt.after), []chat.Signal{{Type: chat.EventTyping, RoomID: roomA, UserID: "ana"}}, nil)
			if got := mustSignals(bobA); len(got) != tt.want {
				t.Fatalf("stamped %s after: %v, want %d", tt.after, got, tt.want)
			}
			mustSignals(bobUser)
		}
	})

	t.Run("PresenceOncePerUserStream", func(t *testing.T) {
		// Dan is in both rooms: Bob's user stream hears of him once.
		eph.DeliverSignals(at, []chat.Signal{{Type: chat.EventPresence, UserID: "dan", Online: true}},
			map[string][]string{"dan": {roomA, roomB}})
		if got := mustSignals(bobUser); len(got) != 1 || got[0] != "presence dan" {
			t.Fatalf("bob's user stream heard %v, want one presence", got)
		}
		if got := mustSignals(ana); len(got) != 1 {
			t.Fatalf("ana's room stream heard %v, want one presence", got)
		}
	})

	t.Run("MemberReadOnlyInItsRoom", func(t *testing.T) {
		eph.DeliverSignals(at, []chat.Signal{{Type: chat.EventMemberRead, RoomID: roomB, UserID: "dan", LastReadSeq: 3}}, nil)
		if got := mustSignals(ana); len(got) != 0 {
			t.Fatalf("ana's stream of room A heard room B's %v", got)
		}
		if got := mustSignals(bobUser); len(got) != 1 {
			t.Fatalf("bob's user stream heard %v, want room B's read receipt", got)
		}
	})

	t.Run("FullQueueDrops", func(t *testing.T) {
		for i := range signalQueueLen + 10 {
			eph.DeliverSignals(at, []chat.Signal{{Type: chat.EventMemberRead, RoomID: roomA, UserID: "ana", LastReadSeq: int64(i)}}, nil)
		}
		if got := mustSignals(bobA); len(got) != signalQueueLen {
			t.Fatalf("%d queued, want the bound %d", len(got), signalQueueLen)
		}
		select {
		case <-bobA.Done():
			t.Fatal("a full signal queue cut the subscriber off")
		default:
		}
	})
}

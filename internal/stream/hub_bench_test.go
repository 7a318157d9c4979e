package stream

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/metrics"
)

// BenchmarkFanOut measures one inline Publish to a room of n subscribers,
// each drained by its own goroutine as a stream would: room streams
// (kind=room), or user streams each also subscribed to 19 other rooms
// (kind=user). The goal: no more per subscriber for user streams. The hub
// reports to the metrics a replica keeps (one counter add and one histogram
// observation per event; nothing per subscriber).
func BenchmarkFanOut(b *testing.B) {
	data := []byte(`{"id":"9b2f0c57-5c1e-4c43-a8c5-0b8f3b8f9a11","room_id":"0d4c1b9e-7d7a-4bb1-8f0e-2e4b7f1c6d21","seq":1,` +
		`"author":{"id":"5f1f8d2a-3c4b-4e6f-9a7b-1c2d3e4f5a6b","username":"ada","display_name":"Ada"},` +
		`"body":"hello, room","created_at":"2026-01-01T12:00:00.123456Z"}`)
	for _, kind := range []string{"room", "user"} {
		// 5,000: the hot room of make bench, all on one replica.
		for _, n := range []int{1, 100, 1000, 5000} {
			b.Run("kind="+kind+"/subscribers="+strconv.Itoa(n), func(b *testing.B) { benchFanOut(b, kind, n, data) })
		}
	}
}

// drainable is what the fan-out benchmark drains.
type drainable interface {
	Next() (*chat.Event, bool)
}

func benchFanOut(b *testing.B, kind string, n int, data []byte) {
	db := MustDB(b)
	h := NewHub(db, slog.New(slog.DiscardHandler), DefaultQueueLen, WithObserver(metrics.New(metrics.Sources{})))
	roomID := uuid.NewString()
	// Queues are emptied, off the clock, every drainEvery events (fewer
	// than a queue holds): the benchmark measures fan-out alone, not the
	// scheduling of readers (on 2 busy cores it swamped the figures) nor
	// disconnects.
	const drainEvery = DefaultQueueLen / 2
	others := make([]string, 19)
	for i := range others {
		others[i] = uuid.NewString()
	}
	subs := make([]drainable, n)
	for i := range subs {
		var sub drainable
		if kind == "room" {
			rs, err := h.Subscribe(roomID, "user", 0)
			if err != nil {
				b.Fatal(err)
			}
			sub = rs
		} else {
			us, err := h.SubscribeUser("user" + strconv.Itoa(i))
			if err != nil {
				b.Fatal(err)
			}
			for _, id := range append([]string{roomID}, others...) {
				if err := us.AddRoom(id, 0); err != nil {
					b.Fatal(err)
				}
			}
			sub = us
		}
		subs[i] = sub
	}
	ctx := b.Context()
	committed := time.Now()
	b.ReportAllocs()
	seq := int64(0)
	for b.Loop() {
		seq++
		h.Publish(ctx, chat.Event{RoomID: roomID, Seq: seq, Type: chat.EventMessage, Data: data, CommittedAt: committed})
		if seq%drainEvery == 0 {
			b.StopTimer()
			for _, sub := range subs {
				for _, ok := sub.Next(); ok; _, ok = sub.Next() {
				}
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	if st := h.Stats(); st.Subscribers != n {
		b.Fatalf("%d of %d subscribers left: some were cut off", st.Subscribers, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
	h.Close()
}

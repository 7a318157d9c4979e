package stream

import (
	"log/slog"
	"strconv"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
)

// BenchmarkFanOut measures one inline Publish to a room of n subscribers,
// each drained by its own goroutine as a stream would.
func BenchmarkFanOut(b *testing.B) {
	db := MustDB(b)
	data := []byte(`{"id":"9b2f0c57-5c1e-4c43-a8c5-0b8f3b8f9a11","room_id":"0d4c1b9e-7d7a-4bb1-8f0e-2e4b7f1c6d21","seq":1,` +
		`"author":{"id":"5f1f8d2a-3c4b-4e6f-9a7b-1c2d3e4f5a6b","username":"ada","display_name":"Ada"},` +
		`"body":"hello, room","created_at":"2026-01-01T12:00:00.123456Z"}`)
	for _, n := range []int{1, 100, 1000} {
		b.Run("subscribers="+strconv.Itoa(n), func(b *testing.B) {
			h := NewHub(db, slog.New(slog.DiscardHandler), DefaultQueueLen)
			roomID := uuid.NewString()
			// Drainers acknowledge every checkpoint-th event, and the
			// publisher waits for the previous checkpoint, so no queue
			// holds more than 2*checkpoint events and nobody is cut off:
			// the benchmark measures fan-out, not disconnects.
			const checkpoint = 256
			acks := make([]chan struct{}, n)
			var wg sync.WaitGroup
			subs := make([]chat.Subscription, n)
			for i := range subs {
				sub, err := h.Subscribe(roomID, "user", 0)
				if err != nil {
					b.Fatal(err)
				}
				subs[i], acks[i] = sub, make(chan struct{}, 4)
				wg.Go(func() {
					for {
						select {
						case ev := <-sub.Events():
							if ev.Seq%checkpoint == 0 {
								acks[i] <- struct{}{}
							}
						case <-sub.Done():
							return
						}
					}
				})
			}
			ctx := b.Context()
			b.ReportAllocs()
			seq := int64(0)
			for b.Loop() {
				seq++
				h.Publish(ctx, chat.Event{RoomID: roomID, Seq: seq, Type: chat.EventMessage, Data: data})
				if seq%checkpoint == 0 && seq > checkpoint {
					for _, ack := range acks {
						<-ack
					}
				}
			}
			b.StopTimer()
			if st := h.Stats(); st.Subscribers != n {
				b.Fatalf("%d of %d subscribers left: some were cut off", st.Subscribers, n)
			}
			h.Close()
			wg.Wait()
		})
	}
}

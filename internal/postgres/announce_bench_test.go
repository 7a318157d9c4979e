package postgres

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/stream"
)

// BenchmarkAnnouncementIntake is what a replica pays per announced event
// of a room it has no subscriber in: decoding the batch payload, putting
// the event in its room's order, and the hub's look-up that finds nobody.
// Reported per event; the payloads carry message events of 100 rooms as
// posting replicas batch them.
func BenchmarkAnnouncementIntake(b *testing.B) {
	rooms := make([]string, 100)
	for i := range rooms {
		rooms[i] = uuid.NewString()
	}
	user := uuid.NewString()
	body := strings.Repeat("x", 64)
	var evs []chat.Event
	seq := make([]int64, len(rooms))
	for i := range 2000 {
		r := i % len(rooms)
		seq[r]++
		data := `{"id":"` + uuid.NewString() + `","room_id":"` + rooms[r] + `","seq":` + strconv.FormatInt(seq[r], 10) +
			`,"author":{"id":"` + user + `","username":"poster","display_name":"Poster"},"body":"` + body +
			`","created_at":"2026-12-01T14:00:00Z","reactions":[]}`
		evs = append(evs, chat.Event{RoomID: rooms[r], Seq: seq[r], Type: chat.EventMessage, SubjectID: user,
			Data: []byte(data), CommittedAt: time.Now()})
	}
	payloads := encodeBatches(evs)
	b.Logf("%d events in %d payloads (%.1f per payload)", len(evs), len(payloads), float64(len(evs))/float64(len(payloads)))
	hub := stream.NewHub(nil, slog.New(slog.DiscardHandler), 0)
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		// A fresh order each pass: the same seqs again would be dropped
		// as duplicates before reaching the hub.
		order := newRoomOrder(holdMax, func(ev chat.Event) { hub.Publish(ctx, ev) })
		now := time.Now()
		for _, p := range payloads {
			dec, err := DecodeAnnouncement(p)
			if err != nil {
				b.Fatal(err)
			}
			for _, ev := range dec {
				order.add(ev, now)
			}
		}
		n += len(evs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

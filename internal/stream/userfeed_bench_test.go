package stream

import (
	"runtime"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
)

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIdleStreamMemory measures, in one run, what an idle stream
// holds in the hub and its feed: a room stream (its subscription) and a
// user stream of a user in 20 rooms (its subscription in 20 rooms and the
// feed's positions after Start). It reports bytes per stream of each and
// their ratio; the goal is a ratio of at most 1.5.
func BenchmarkIdleStreamMemory(b *testing.B) {
	const streams, rooms = 100, 20
	fx := MustFeedFixture(b)
	alice := MustUser(b, fx.db)
	var ids []string
	for range rooms {
		id, _ := MustRoom(b, fx.db, alice, 3)
		ids = append(ids, id)
	}
	emit := func(*chat.Event, string) error { return nil }
	var roomBytes, userBytes float64
	for b.Loop() {
		before := heapInUse()
		subs := make([]chat.Subscription, streams)
		for i := range subs {
			sub, err := fx.hub.Subscribe(ids[i%rooms], alice, 4)
			if err != nil {
				b.Fatal(err)
			}
			subs[i] = sub
		}
		mid := heapInUse()
		feeds := make([]*UserFeed, streams)
		for i := range feeds {
			sub, err := fx.hub.SubscribeUser(alice)
			if err != nil {
				b.Fatal(err)
			}
			feeds[i] = NewUserFeed(alice, sub, fx.db, fx.db, fx.codec, emit)
			if _, err := feeds[i].Start(b.Context(), nil); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		roomBytes = float64(mid-before) / streams
		userBytes = float64(after-mid) / streams
		if got := len(feeds[0].rooms); got != rooms {
			b.Fatalf("a feed follows %d rooms, want %d", got, rooms)
		}
		for i := range subs {
			subs[i].Close()
			feeds[i].Close()
		}
	}
	b.ReportMetric(roomBytes, "B/room-stream")
	b.ReportMetric(userBytes, "B/user-stream")
	b.ReportMetric(userBytes/roomBytes, "user/room")
}

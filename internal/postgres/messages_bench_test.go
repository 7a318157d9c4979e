package postgres_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/postgres"
)

// BenchmarkPostMessage measures PostMessage on a real database: posts
// arriving together share a transaction (group commit), which locks their
// rooms, takes their seqs and appends their events; their announcements
// go out after the commit, in batches.
func BenchmarkPostMessage(b *testing.B) {
	post := chat.MessagePost{Body: "hello, room: a message of ordinary length for a chat"}

	// limited runs under a write limit that never refuses, to measure the
	// charge riding in the first round trip.
	limited := postgres.WithLimits(postgres.Limits{PostRate: 1e9, PostBurst: 1e9})
	for _, lim := range []struct {
		name string
		opts []postgres.Option
	}{{"", nil}, {"/limited", []postgres.Option{limited}}} {
		b.Run("Sequential"+lim.name, func(b *testing.B) {
			f := MustEventFixture(b, 4, lim.opts...)
			roomID := f.MustRoom(b)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := f.db.PostMessage(ctx, f.user, roomID, post); err != nil {
					b.Fatal(err)
				}
			}
		})

		// Eight posters (four per core on this 2-core machine) share a pool
		// of eight connections: into one room they queue on its row lock,
		// into several they share group commits (see groupcommit.go; and,
		// limited, their one user's bucket row). 64 posters into 100 rooms
		// is make bench's throughput scenario without HTTP.
		for _, rooms := range []int{1, 8, 100} {
			b.Run("Parallel/rooms="+strconv.Itoa(rooms)+lim.name, func(b *testing.B) {
				pool := int32(8)
				if rooms == 100 {
					pool = 24 // a replica's pool
				}
				f := MustEventFixture(b, pool, lim.opts...)
				ids := make([]string, rooms)
				for i := range ids {
					ids[i] = f.MustRoom(b)
				}
				var next atomic.Int64
				ctx := b.Context()
				b.ReportAllocs()
				b.SetParallelism(4)
				if rooms == 100 {
					b.SetParallelism(32)
				}
				b.RunParallel(func(pb *testing.PB) {
					roomID := ids[int(next.Add(1))%rooms]
					for pb.Next() {
						if _, _, err := f.db.PostMessage(ctx, f.user, roomID, post); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
			})
		}
	}
}

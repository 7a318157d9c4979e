package postgres_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/postgres"
	"github.com/parley-chat/parley/internal/stream"
)

// signalCounter is a postgres.SignalObserver that counts.
type signalCounter struct {
	transactions, signals, payloads, bytes, coalesced atomic.Int64
}

func (c *signalCounter) SignalsSent(signals, payloads, bytes int) {
	c.transactions.Add(1)
	c.signals.Add(int64(signals))
	c.payloads.Add(int64(payloads))
	c.bytes.Add(int64(bytes))
}

func (c *signalCounter) SignalsDropped(reason string, n int) {
	if reason == postgres.DropCoalesced {
		c.coalesced.Add(int64(n))
	}
}

func (c *signalCounter) NotificationQueueUsage(float64) {}

// BenchmarkTypists measures what a room full of typists costs the
// database: 100 typists in a 1,000-member room, each sending a keystroke
// every 100 ms (faster than people type, each keystroke a POST .../typing),
// through Signals into the database and back through a SignalListener to a
// hub holding the room's 1,000 live subscribers. It reports the notifying
// transactions (each a commit, with synchronous_commit off), their NOTIFY
// payload bytes and the WAL written, per second, against the keystrokes
// per second, which a transaction per keystroke would cost.
func BenchmarkTypists(b *testing.B) {
	const (
		typists        = 100
		members        = 1000
		keystrokeEvery = 100 * time.Millisecond
		round          = 4 * time.Second // of typing, per iteration
	)
	ctx := b.Context()
	logger := slog.New(slog.DiscardHandler)
	f := MustEventFixture(b, 8)
	roomID := f.MustRoom(b)
	pool := f.db.Pool()

	hub := stream.NewHub(f.db, logger, 0)
	defer hub.Close()
	var drainers sync.WaitGroup
	for range members {
		sub, err := hub.Subscribe(roomID, uuid.NewString(), 0)
		if err != nil {
			b.Fatal(err)
		}
		sub.GoLive()
		drainers.Go(func() {
			for {
				select {
				case <-sub.Done():
					return
				case <-sub.Signals():
					for _, ok := sub.NextSignal(); ok; _, ok = sub.NextSignal() {
					}
				}
			}
		})
	}
	lctx, stopListener := context.WithCancel(ctx)
	eph := stream.NewEphemeral(hub)
	listener := postgres.NewSignalListener(f.url, pool, eph, logger)
	up, listenerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(listenerDone)
		listener.Run(lctx, up)
	}()
	<-up
	counts := &signalCounter{}
	sigs := postgres.NewSignals(pool, logger, postgres.SignalsConfig{Observer: counts})
	if err := sigs.Start(ctx); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, typists)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	// snapshot reads the counters and the WAL position.
	type snapshot struct {
		at                                            time.Time
		keystrokes, tx, payloads, bytes, sent, fanned int64
		wal                                           int64
	}
	var keystrokes atomic.Int64
	snap := func() snapshot {
		var wal int64
		if err := pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&wal); err != nil {
			b.Fatal(err)
		}
		return snapshot{time.Now(), keystrokes.Load(), counts.transactions.Load(), counts.payloads.Load(), counts.bytes.Load(),
			counts.signals.Load(), eph.Queued(), wal}
	}
	var total snapshot
	b.ResetTimer()
	for b.Loop() {
		// Each typist types on a ticker of their own, and they start one
		// after the other over a typing interval, so the keystrokes that
		// get through (one per typist every 2 s) are spread evenly: the
		// most transactions this load can cause. Measured once all type.
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * chat.TypingInterval / typists)
				tick := time.NewTicker(keystrokeEvery)
				defer tick.Stop()
				for end := time.Now().Add(round); time.Now().Before(end); <-tick.C {
					sigs.Typing(roomID, id)
					keystrokes.Add(1)
				}
			})
		}
		time.Sleep(chat.TypingInterval)
		from := snap()
		time.Sleep(round - chat.TypingInterval)
		to := snap()
		wg.Wait()
		total.at = total.at.Add(to.at.Sub(from.at))
		total.keystrokes += to.keystrokes - from.keystrokes
		total.tx += to.tx - from.tx
		total.payloads += to.payloads - from.payloads
		total.bytes += to.bytes - from.bytes
		total.sent += to.sent - from.sent
		total.fanned += to.fanned - from.fanned
		total.wal += to.wal - from.wal
	}
	b.StopTimer()
	sigs.Close(ctx)
	stopListener()
	<-listenerDone
	hub.Close()
	drainers.Wait()
	secs := total.at.Sub(time.Time{}).Seconds()
	b.ReportMetric(float64(total.keystrokes)/secs, "keystrokes/s")
	b.ReportMetric(float64(total.tx)/secs, "notify_tx/s")
	b.ReportMetric(float64(total.payloads)/secs, "payloads/s")
	b.ReportMetric(float64(total.bytes)/secs, "notify_B/s")
	b.ReportMetric(float64(total.sent)/secs, "typing_sent/s")
	b.ReportMetric(float64(total.wal)/secs, "wal_B/s")
	b.ReportMetric(float64(total.fanned)/secs, "deliveries/s")
	b.ReportMetric(0, "ns/op") // one op is a round of typing: its time says nothing
}

package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/pgtest"
	"github.com/parley-chat/parley/internal/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// waitTimeout bounds every wait for something the hub should have done.
const waitTimeout = 10 * time.Second

// MustDB returns a store on a fresh migrated database.
func MustDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	pool, err := postgres.OpenPool(tb.Context(), pgtest.NewDB(tb), 4, 0)
	if err != nil {
		tb.Fatalf("open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return postgres.NewDB(pool)
}

// MustUser creates a user and returns its id.
func MustUser(tb testing.TB, db *postgres.DB) string {
	tb.Helper()
	id := uuid.NewString()
	u := chat.User{ID: id, Username: "u" + strings.ReplaceAll(id, "-", "")[:12], DisplayName: "User", CreatedAt: time.Now().UTC()}
	if err := db.CreateUser(tb.Context(), u, "hash"); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return id
}

// MustRoom creates a room owned by userID holding n messages after the
// owner's member.joined, so its log holds seqs 1..n+1, and returns the
// room's id and its events by seq (index 0 unused).
func MustRoom(tb testing.TB, db *postgres.DB, userID string, n int) (string, []chat.Event) {
	tb.Helper()
	room, err := db.CreateRoom(tb.Context(), userID, chat.RoomCreate{Name: "room", Visibility: chat.Public})
	if err != nil {
		tb.Fatalf("create room: %v", err)
	}
	MustPost(tb, db, userID, room.ID, n)
	return room.ID, MustEvents(tb, db, room.ID)
}

// MustPost posts n messages to a room. Nobody listens, so for the hub these
// are "lost" notifications until a test publishes them.
func MustPost(tb testing.TB, db *postgres.DB, userID, roomID string, n int) {
	tb.Helper()
	for i := range n {
		if _, _, err := db.PostMessage(tb.Context(), userID, roomID, chat.MessagePost{Body: "message " + strconv.Itoa(i)}); err != nil {
			tb.Fatalf("post message: %v", err)
		}
	}
}

// MustEvents returns the room's whole log indexed by seq (index 0 unused).
func MustEvents(tb testing.TB, db *postgres.DB, roomID string) []chat.Event {
	tb.Helper()
	evs, err := db.ReadEvents(tb.Context(), roomID, 0, 10000)
	if err != nil {
		tb.Fatalf("read events: %v", err)
	}
	return append([]chat.Event{{}}, evs...)
}

// MustSubscribe subscribes to roomID at after; the subscription is closed
// when the test ends.
func MustSubscribe(tb testing.TB, h *Hub, roomID string, after int64) chat.Subscription {
	tb.Helper()
	sub, err := h.Subscribe(roomID, "user", after)
	if err != nil {
		tb.Fatalf("subscribe: %v", err)
	}
	tb.Cleanup(sub.Close)
	return sub
}

// MustReceive waits for the next n events of sub.
func MustReceive(tb testing.TB, sub chat.Subscription, n int) []*chat.Event {
	tb.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	evs := make([]*chat.Event, 0, n)
	for len(evs) < n {
		if ev, ok := sub.Next(); ok {
			evs = append(evs, ev)
			continue
		}
		select {
		case <-sub.Ready():
		case <-timeout.C:
			tb.Fatalf("received seqs %v, want %d events", seqs(evs), n)
		}
	}
	return evs
}

// AssertIdle checks that nothing is queued for sub. Publish and Resync
// queue synchronously, so once they return there is nothing to wait for.
func AssertIdle(tb testing.TB, sub chat.Subscription) {
	tb.Helper()
	if ev, ok := sub.Next(); ok {
		tb.Errorf("unexpected event seq %d", ev.Seq)
	}
}

// AssertLogged checks that each received event is the logged one.
func AssertLogged(tb testing.TB, got []*chat.Event, log []chat.Event) {
	tb.Helper()
	for _, ev := range got {
		want := log[ev.Seq]
		if ev.RoomID != want.RoomID || ev.Type != want.Type || ev.SubjectID != want.SubjectID || !bytes.Equal(ev.Data, want.Data) {
			tb.Errorf("seq %d: got %+v, want %+v", ev.Seq, *ev, want)
		}
	}
}

func seqs(evs []*chat.Event) []int64 {
	s := make([]int64, len(evs))
	for i, ev := range evs {
		s[i] = ev.Seq
	}
	return s
}

func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func equalSeqs(a, b []int64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// publishScript publishes the room's logged events as a listener would
// announce them: "1 2* 4" publishes seq 1 and 4 inline and seq 2 by
// reference (without Data).
func publishScript(ctx context.Context, tb testing.TB, h *Hub, log []chat.Event, script string) {
	tb.Helper()
	for _, f := range strings.Fields(script) {
		seq, err := strconv.ParseInt(strings.TrimSuffix(f, "*"), 10, 64)
		if err != nil {
			tb.Fatalf("bad script step %q", f)
		}
		ev := log[seq]
		if strings.HasSuffix(f, "*") {
			ev.Data = nil
		}
		h.Publish(ctx, ev)
	}
}

func TestHubPublish(t *testing.T) {
	db := MustDB(t)
	user := MustUser(t, db)
	h := NewHub(db, testLogger(t), 0)
	otherRoom, otherLog := MustRoom(t, db, user, 0)
	other := MustSubscribe(t, h, otherRoom, 0)

	tests := []struct {
		name    string
		after   int64  // the subscribers' position
		publish string // announcements in order; "*" marks a reference
		want    []int64
	}{
		{"Inline", 0, "1 2 3 4", seqRange(1, 4)},
		{"Reference", 0, "1 2* 3 4* 5* 6", seqRange(1, 6)},
		{"FirstIsReference", 2, "3* 4", seqRange(3, 4)},
		{"Gap", 0, "1 4", seqRange(1, 4)},
		{"LongGap", 0, "1 8", seqRange(1, 8)},
		{"GapToReference", 0, "1 2 5* 6", seqRange(1, 6)},
		{"Duplicates", 0, "1 2 2 1 3 2* 3* 4", seqRange(1, 4)},
		{"LateAnnouncementsAfterGap", 0, "1 4 2 3 3* 5", seqRange(1, 5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roomID, log := MustRoom(t, db, user, 7)
			subs := []chat.Subscription{MustSubscribe(t, h, roomID, tt.after), MustSubscribe(t, h, roomID, tt.after)}

			publishScript(t.Context(), t, h, log, tt.publish)

			for i, sub := range subs {
				got := MustReceive(t, sub, len(tt.want))
				if !equalSeqs(seqs(got), tt.want) {
					t.Errorf("subscriber %d got seqs %v, want %v", i, seqs(got), tt.want)
				}
				AssertLogged(t, got, log)
				AssertIdle(t, sub)
			}
			AssertIdle(t, other)
		})
	}

	t.Run("OtherRoomStillWorks", func(t *testing.T) {
		publishScript(t.Context(), t, h, otherLog, "1")
		AssertLogged(t, MustReceive(t, other, 1), otherLog)
	})

	t.Run("NoSubscribers", func(t *testing.T) {
		roomID, log := MustRoom(t, db, user, 1)
		before := h.Stats()
		publishScript(t.Context(), t, h, log, "1 2*")
		if got := h.Stats(); got != before {
			t.Errorf("Stats = %+v after publishing to a room nobody follows, want %+v", got, before)
		}
		// The room is not remembered: a later subscriber starts where
		// it says, not after the events it never saw.
		sub := MustSubscribe(t, h, roomID, 1)
		publishScript(t.Context(), t, h, log, "2")
		AssertLogged(t, MustReceive(t, sub, 1), log)
	})
}

// TestHubUnknownRoomReadFailure pins down what happens when reading a
// reference fails before a room's first fan-out: the next announcement must
// still bring the failed event, as it does for a room the hub already knows.
func TestHubUnknownRoomReadFailure(t *testing.T) {
	db := MustDB(t)
	user := MustUser(t, db)
	h := NewHub(db, testLogger(t), 0)
	tests := []struct {
		name  string
		known bool // whether the hub fanned out seq 1 before the failure
	}{
		{"KnownRoom", true},
		{"UnknownRoom", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roomID, log := MustRoom(t, db, user, 3)
			sub := MustSubscribe(t, h, roomID, 1)
			if tt.known {
				publishScript(t.Context(), t, h, log, "2")
				MustReceive(t, sub, 1)
			}
			// A canceled context makes the log read fail at once, as a
			// database outage longer than the retries would.
			canceled, cancel := context.WithCancel(t.Context())
			cancel()
			publishScript(canceled, t, h, log, "3*")
			AssertIdle(t, sub)

			publishScript(t.Context(), t, h, log, "4")
			if got := seqs(MustReceive(t, sub, 2)); !equalSeqs(got, seqRange(3, 4)) {
				t.Errorf("got seqs %v, want [3 4]", got)
			}
		})
	}
}

// TestHubRetry: in a room that goes quiet after a failed log read, Retry
// delivers the event the hub could not read, and reports rooms still
// pending while reads keep failing.
func TestHubRetry(t *testing.T) {
	db := MustDB(t)
	user := MustUser(t, db)
	h := NewHub(db, testLogger(t), 0)
	roomID, log := MustRoom(t, db, user, 3)
	sub := MustSubscribe(t, h, roomID, 1)
	publishScript(t.Context(), t, h, log, "2")
	MustReceive(t, sub, 1)

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	publishScript(canceled, t, h, log, "3*")
	AssertIdle(t, sub)
	if !h.Retry(canceled) {
		t.Fatal("Retry with reads failing reported nothing pending")
	}
	AssertIdle(t, sub)
	if h.Retry(t.Context()) {
		t.Fatal("Retry with reads working still reports a pending room")
	}
	if got := seqs(MustReceive(t, sub, 2)); !equalSeqs(got, seqRange(3, 4)) {
		t.Errorf("got seqs %v, want [3 4] (Retry reads to the end of the log)", got)
	}
	AssertIdle(t, sub)
}

func TestHubSlowConsumer(t *testing.T) {
	const queueLen = 4
	db := MustDB(t)
	user := MustUser(t, db)
	roomID, log := MustRoom(t, db, user, 9) // seqs 1..10
	h := NewHub(db, testLogger(t), queueLen)
	slow := MustSubscribe(t, h, roomID, 0)
	fast := MustSubscribe(t, h, roomID, 0)

	for seq := int64(1); seq <= 10; seq++ {
		publishScript(t.Context(), t, h, log, strconv.FormatInt(seq, 10))
		if got := MustReceive(t, fast, 1)[0].Seq; got != seq {
			t.Fatalf("fast subscriber got seq %d, want %d", got, seq)
		}
		select {
		case <-slow.Done():
			if seq <= queueLen {
				t.Fatalf("slow subscriber cut off at seq %d with room for %d", seq, queueLen)
			}
		default:
			if seq > queueLen {
				t.Fatalf("slow subscriber still subscribed at seq %d with a queue of %d", seq, queueLen)
			}
			if err := slow.Err(); err != nil {
				t.Fatalf("Err() = %v before Done", err)
			}
		}
	}
	if err := slow.Err(); !errors.Is(err, ErrSlowConsumer) {
		t.Errorf("Err() = %v, want ErrSlowConsumer", err)
	}
	if got, want := h.Stats(), (Stats{Rooms: 1, Subscribers: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	// What was queued before the cut-off stays readable, in order.
	if got := seqs(MustReceive(t, slow, queueLen)); !equalSeqs(got, seqRange(1, queueLen)) {
		t.Errorf("slow subscriber's queue holds %v, want 1..%d", got, queueLen)
	}
	AssertIdle(t, slow)
	AssertIdle(t, fast)

	t.Run("BatchLargerThanQueue", func(t *testing.T) {
		// A gap wider than the queue is fanned out in one batch: every
		// subscriber that cannot take it is cut off rather than waited for.
		roomID, log := MustRoom(t, db, user, 9)
		sub := MustSubscribe(t, h, roomID, 0)
		publishScript(t.Context(), t, h, log, "1 10")
		select {
		case <-sub.Done():
		default:
			t.Fatal("subscriber not cut off by a batch larger than its queue")
		}
		if err := sub.Err(); !errors.Is(err, ErrSlowConsumer) {
			t.Errorf("Err() = %v, want ErrSlowConsumer", err)
		}
	})
}

func TestHubResync(t *testing.T) {
	db := MustDB(t)
	user := MustUser(t, db)
	h := NewHub(db, testLogger(t), 0)

	// A room whose subscribers received seq 1..3, then lost 4..6.
	known, _ := MustRoom(t, db, user, 2)
	knownSub := MustSubscribe(t, h, known, 0)
	publishScript(t.Context(), t, h, MustEvents(t, db, known), "1 2 3")
	MustReceive(t, knownSub, 3)
	MustPost(t, db, user, known, 3)

	// A room whose subscribers, at 3 and 5, received nothing before 6..8
	// were lost: the hub catches up from the earliest of them.
	unknown, _ := MustRoom(t, db, user, 4)
	behind := MustSubscribe(t, h, unknown, 3)
	ahead := MustSubscribe(t, h, unknown, 5)
	MustPost(t, db, user, unknown, 3)

	// A room that lost nothing.
	quiet, quietLog := MustRoom(t, db, user, 1)
	quietSub := MustSubscribe(t, h, quiet, 2)

	h.Resync(t.Context())

	knownLog := MustEvents(t, db, known)
	unknownLog := MustEvents(t, db, unknown)
	tests := []struct {
		name  string
		sub   chat.Subscription
		log   []chat.Event
		after int64
		want  []int64
	}{
		{"KnownRoom", knownSub, knownLog, 3, seqRange(4, 6)},
		{"UnknownRoomBehind", behind, unknownLog, 3, seqRange(4, 8)},
		// The catch-up starts at the earliest position, but the hub does
		// not queue what this subscriber already has.
		{"UnknownRoomAhead", ahead, unknownLog, 5, seqRange(6, 8)},
		{"NothingLost", quietSub, quietLog, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MustReceive(t, tt.sub, len(tt.want))
			if !equalSeqs(seqs(got), tt.want) {
				t.Errorf("got seqs %v, want %v", seqs(got), tt.want)
			}
			AssertLogged(t, got, tt.log)
			AssertIdle(t, tt.sub)
		})
	}

	t.Run("LateAnnouncementsDropped", func(t *testing.T) {
		// The listener's queue may still hold announcements of events the
		// resync delivered.
		publishScript(t.Context(), t, h, knownLog, "5 6*")
		publishScript(t.Context(), t, h, unknownLog, "7 8")
		for _, sub := range []chat.Subscription{knownSub, behind, ahead} {
			AssertIdle(t, sub)
		}
		MustPost(t, db, user, known, 1)
		publishScript(t.Context(), t, h, MustEvents(t, db, known), "7")
		if got := MustReceive(t, knownSub, 1)[0].Seq; got != 7 {
			t.Errorf("got seq %d, want 7", got)
		}
	})
}

// TestHubMissedJoins: a user stream not subscribed to a room hears of its
// user's join there only from the hub. When the listener missed the join's
// announcement (lost, or overtaken for longer than the listener waits) and
// hands on a later event or a sweep's reference with MissedFrom, the hub
// reads the missed run from the log and routes the join to the user's
// streams, once, whether or not anyone here follows the room.
func TestHubMissedJoins(t *testing.T) {
	db := MustDB(t)
	owner := MustUser(t, db)
	// announced is the logged event as the listener hands it on: by
	// reference with ref, after a run of missed events from missedFrom.
	announced := func(log []chat.Event, seq int64, ref bool, missedFrom int64) chat.Event {
		ev := log[seq]
		if ref {
			ev.Data = nil
		}
		ev.MissedFrom = missedFrom
		return ev
	}
	tests := []struct {
		name string
		// follow subscribes a room stream (not the joiner's) that had
		// seqs 1-3 fanned out; follower subscribes one at 3 that had
		// nothing fanned out yet.
		follow, follower bool
		publish          func(log []chat.Event) []chat.Event
		wantJoin         bool
	}{
		{"NobodyFollowsLaterEvent", false, false, func(log []chat.Event) []chat.Event {
			return []chat.Event{announced(log, 5, false, 4)}
		}, true},
		{"NobodyFollowsSweptReference", false, false, func(log []chat.Event) []chat.Event {
			return []chat.Event{announced(log, 5, true, 4)}
		}, true},
		{"NobodyFollowsSweptJoin", false, false, func(log []chat.Event) []chat.Event {
			return []chat.Event{announced(log, 4, true, 4)}
		}, true},
		{"FollowedGap", true, false, func(log []chat.Event) []chat.Event {
			return []chat.Event{announced(log, 5, false, 4)}
		}, true},
		{"FollowedFirstHeard", false, true, func(log []chat.Event) []chat.Event {
			return []chat.Event{announced(log, 5, false, 4)}
		}, true},
		{"AnnouncedThenLater", false, false, func(log []chat.Event) []chat.Event {
			return []chat.Event{announced(log, 4, false, 0), announced(log, 5, false, 0)}
		}, true},
		// Nothing missed: nothing is read for a room nobody follows.
		{"NothingMissed", false, false, func(log []chat.Event) []chat.Event {
			return []chat.Event{announced(log, 5, false, 0)}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub(db, testLogger(t), 0)
			t.Cleanup(h.Close)
			roomID, _ := MustRoom(t, db, owner, 2)
			joiner := MustUser(t, db)
			if _, err := db.JoinRoom(t.Context(), joiner, roomID); err != nil {
				t.Fatal(err)
			}
			MustPost(t, db, owner, roomID, 1)
			log := MustEvents(t, db, roomID) // 1 owner joined, 2-3 posts, 4 joiner joined, 5 post
			if log[4].Type != chat.EventMemberJoined || log[4].SubjectID != joiner || len(log) != 6 {
				t.Fatalf("log: %+v", log)
			}
			user, err := h.SubscribeUser(joiner)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(user.Close)
			var room chat.Subscription
			switch {
			case tt.follow:
				room = MustSubscribe(t, h, roomID, 0)
				publishScript(t.Context(), t, h, log, "1 2 3")
				MustReceive(t, room, 3)
			case tt.follower:
				room = MustSubscribe(t, h, roomID, 3)
			}

			for _, ev := range tt.publish(log) {
				h.Publish(t.Context(), ev)
			}

			var got []int64
			for ev, ok := user.Next(); ok; ev, ok = user.Next() {
				if ev.Type != chat.EventMemberJoined || ev.SubjectID != joiner || !bytes.Equal(ev.Data, log[4].Data) {
					t.Errorf("user stream got %+v, want only the join", *ev)
				}
				got = append(got, ev.Seq)
			}
			want := []int64(nil)
			if tt.wantJoin {
				want = []int64{4}
			}
			if !equalSeqs(got, want) {
				t.Errorf("user stream got seqs %v, want %v", got, want)
			}
			if tt.follow {
				evs := MustReceive(t, room, 2)
				if !equalSeqs(seqs(evs), seqRange(4, 5)) {
					t.Errorf("room stream got seqs %v, want [4 5]", seqs(evs))
				}
				AssertLogged(t, evs, log)
				AssertIdle(t, room)
			}
		})
	}

	t.Run("ReadFails", func(t *testing.T) {
		// The join cannot be read: the user's streams re-read their
		// memberships instead, as after a listener's reconnect.
		h := NewHub(db, testLogger(t), 0)
		t.Cleanup(h.Close)
		_, log := MustRoom(t, db, owner, 2)
		user, err := h.SubscribeUser(MustUser(t, db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(user.Close)
		canceled, cancel := context.WithCancel(t.Context())
		cancel()
		ev := log[3]
		ev.MissedFrom = 2
		h.Publish(canceled, ev)
		select {
		case <-user.Resync():
		default:
			t.Error("user stream not told to re-read its memberships")
		}
	})
}

func TestHubClose(t *testing.T) {
	db := MustDB(t)
	user := MustUser(t, db)
	h := NewHub(db, testLogger(t), 0)
	roomA, logA := MustRoom(t, db, user, 1)
	roomB, _ := MustRoom(t, db, user, 1)

	t.Run("SubscriptionClose", func(t *testing.T) {
		sub := MustSubscribe(t, h, roomA, 0)
		stay := MustSubscribe(t, h, roomA, 0)
		sub.Close()
		select {
		case <-sub.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
		if err := sub.Err(); err != nil {
			t.Errorf("Err() = %v after Close, want nil", err)
		}
		sub.Close() // a second Close is harmless
		publishScript(t.Context(), t, h, logA, "1")
		AssertIdle(t, sub)
		MustReceive(t, stay, 1)
		stay.Close()
		if got := h.Stats(); got != (Stats{}) {
			t.Errorf("Stats = %+v after every subscription closed, want zero", got)
		}
	})

	t.Run("HubClose", func(t *testing.T) {
		subs := []chat.Subscription{
			MustSubscribe(t, h, roomA, 0), MustSubscribe(t, h, roomA, 0), MustSubscribe(t, h, roomB, 0),
		}
		if got, want := h.Stats(), (Stats{Rooms: 2, Subscribers: 3}); got != want {
			t.Fatalf("Stats = %+v, want %+v", got, want)
		}
		h.Close()
		for i, sub := range subs {
			select {
			case <-sub.Done():
			default:
				t.Fatalf("subscription %d not done after Close", i)
			}
			if err := sub.Err(); !errors.Is(err, ErrShutdown) {
				t.Errorf("subscription %d: Err() = %v, want ErrShutdown", i, err)
			}
			sub.Close() // what a stream's deferred Close does
		}
		if got := h.Stats(); got != (Stats{}) {
			t.Errorf("Stats = %+v after Close, want zero", got)
		}
		if _, err := h.Subscribe(roomA, "user", 0); !errors.Is(err, ErrShutdown) {
			t.Errorf("Subscribe after Close: err = %v, want ErrShutdown", err)
		}
		// The listener may still announce and resync while shutting down.
		publishScript(t.Context(), t, h, logA, "2")
		h.Resync(t.Context())
		h.Close()
	})
}

// TestHubConcurrent has subscribers come and go while one goroutine, as the
// listener does, publishes two rooms' events (some by reference, some
// lost and filled as gaps). Every subscriber must see a gap-free run.
func TestHubConcurrent(t *testing.T) {
	const (
		perRoom  = 150 // messages per room, after seq 1
		stayers  = 3   // per room, drain as events come
		holders  = 3   // per room, drain only at the end
		churners = 8
	)
	db := MustDB(t)
	user := MustUser(t, db)
	h := NewHub(db, testLogger(t), 0)
	var rooms [2]string
	var logs [2][]chat.Event
	for i := range rooms {
		rooms[i], logs[i] = MustRoom(t, db, user, perRoom)
	}
	last := int64(perRoom + 1)

	// checkRun reports a run of seqs that is not consecutive.
	checkRun := func(who string, got []int64) {
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Errorf("%s: seq %d after %d in %v", who, got[i], got[i-1], got)
				return
			}
		}
	}

	published := make(chan struct{})
	var wg sync.WaitGroup

	for r, roomID := range rooms {
		for i := range stayers {
			sub := MustSubscribe(t, h, roomID, 0)
			wg.Go(func() {
				got := seqs(receiveAsync(t, sub, int(last)))
				if !equalSeqs(got, seqRange(1, last)) {
					t.Errorf("room %d stayer %d: got %v", r, i, got)
				}
			})
		}
		for i := range holders {
			sub := MustSubscribe(t, h, roomID, 0)
			wg.Go(func() {
				<-published
				got := seqs(receiveAsync(t, sub, int(last)))
				if !equalSeqs(got, seqRange(1, last)) {
					t.Errorf("room %d holder %d: got %v", r, i, got)
				}
			})
		}
	}

	for c := range churners {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for round := 0; ; round++ {
				roomID := rooms[rng.IntN(len(rooms))]
				sub, err := h.Subscribe(roomID, "user", 0)
				if err != nil {
					t.Errorf("churner %d: subscribe: %v", c, err)
					return
				}
				var got []int64
				want := rng.IntN(12)
				done := false
				for !done && len(got) < want {
					if ev, ok := sub.Next(); ok {
						got = append(got, ev.Seq)
						continue
					}
					select {
					case <-sub.Ready():
					case <-sub.Done():
						t.Errorf("churner %d: cut off: %v", c, sub.Err())
						done = true
					case <-published:
						done = true
					}
				}
				if done {
					// Subscribed through the last publish, which queued
					// everything: whatever it got must run to the end.
					got = append(got, seqs(drain(sub))...)
					if len(got) > 0 && got[len(got)-1] != last {
						t.Errorf("churner %d: run %v stops before %d", c, got, last)
					}
				}
				if st := h.Stats(); st.Subscribers < 2*(stayers+holders) {
					t.Errorf("Stats = %+v, lost long-lived subscribers", st)
				}
				checkRun(fmt.Sprintf("churner %d round %d", c, round), got)
				sub.Close()
				if done {
					return
				}
			}
		})
	}

	// The listener: one goroutine, rooms interleaved; every 7th event by
	// reference, every 11th lost (the next one's gap fill brings it).
	for seq := int64(1); seq <= last; seq++ {
		for r := range rooms {
			ev := logs[r][seq]
			switch {
			case seq%11 == 0 && seq != last:
				continue
			case seq%7 == 0:
				ev.Data = nil
			}
			h.Publish(t.Context(), ev)
		}
	}
	close(published)
	wg.Wait()
	if got, want := h.Stats(), (Stats{Rooms: 2, Subscribers: 2 * (stayers + holders)}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// receiveAsync is MustReceive for goroutines other than the test's: it
// reports with Errorf and returns what it got.
func receiveAsync(tb testing.TB, sub chat.Subscription, n int) []*chat.Event {
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	var evs []*chat.Event
	for len(evs) < n {
		if ev, ok := sub.Next(); ok {
			evs = append(evs, ev)
			continue
		}
		select {
		case <-sub.Ready():
		case <-timeout.C:
			tb.Errorf("received seqs %v, want %d events", seqs(evs), n)
			return evs
		}
	}
	return evs
}

// drain returns what is queued for sub without waiting.
func drain(sub chat.Subscription) []*chat.Event {
	var evs []*chat.Event
	for ev, ok := sub.Next(); ok; ev, ok = sub.Next() {
		evs = append(evs, ev)
	}
	return evs
}

// countingObserver records what the hub reports; the hub calls it from the
// publishing goroutine only, but it locks so the race detector can judge.
type countingObserver struct {
	mu     sync.Mutex
	queued int
	lags   []time.Duration
}

func (o *countingObserver) FannedOut(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.queued += n
}

func (o *countingObserver) Delivered(lag time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lags = append(o.lags, lag)
}

func (o *countingObserver) read() (int, []time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.queued, append([]time.Duration(nil), o.lags...)
}

// TestHubObserver: the hub counts one queued event per event and
// subscriber (skipping what a subscriber already has), and reports one
// delivery lag per announcement that carried a commit time and reached
// subscribers, measured from that time.
func TestHubObserver(t *testing.T) {
	db := MustDB(t)
	user := MustUser(t, db)
	obs := &countingObserver{}
	h := NewHub(db, testLogger(t), 0, WithObserver(obs))
	roomID, log := MustRoom(t, db, user, 4) // seqs 1..5
	subs := []chat.Subscription{MustSubscribe(t, h, roomID, 0), MustSubscribe(t, h, roomID, 0), MustSubscribe(t, h, roomID, 2)}
	committed := time.Now().Add(-50 * time.Millisecond)
	ctx := t.Context()

	// Inline, with a commit time: the third subscriber already has it.
	ev := log[1]
	ev.CommittedAt = committed
	h.Publish(ctx, ev)
	// By reference with a commit time, after a gap: seqs 2 and 3 read from
	// the log; the third subscriber already has 2.
	ev = log[3]
	ev.Data, ev.CommittedAt = nil, committed
	h.Publish(ctx, ev)
	// Inline without a commit time (from an older replica): no lag.
	h.Publish(ctx, log[4])
	// A room nobody follows here: nothing at all.
	_, otherLog := MustRoom(t, db, user, 0)
	ev = otherLog[1]
	ev.CommittedAt = committed
	h.Publish(ctx, ev)

	MustReceive(t, subs[0], 4)
	MustReceive(t, subs[1], 4)
	MustReceive(t, subs[2], 2)
	queued, lags := obs.read()
	if want := 2 + (2 + 3) + 3; queued != want {
		t.Errorf("FannedOut counted %d, want %d", queued, want)
	}
	if len(lags) != 2 {
		t.Fatalf("Delivered %d times (%v), want 2", len(lags), lags)
	}
	for _, lag := range lags {
		if lag < 50*time.Millisecond || lag > waitTimeout {
			t.Errorf("lag %v, want at least the 50ms since the commit time", lag)
		}
	}
}

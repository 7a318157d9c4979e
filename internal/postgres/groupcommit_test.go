package postgres_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/postgres"
)

// TestGroupCommit posts concurrently so that posts share transactions, with
// refusals among them: each post gets the answer it would get alone, a
// refused one fails no other, and every room's log stays gap-free.
func TestGroupCommit(t *testing.T) {
	// A write limit that refuses: a burst of 36 at 1 per second, enough
	// for the posts of the first round (at most 33 charged).
	f := MustEventFixture(t, 8, postgres.WithLimits(postgres.Limits{PostRate: 1, PostBurst: 36}))
	ctx := t.Context()
	other := uuid.NewString()
	u := chat.User{ID: other, Username: "o" + strings.ReplaceAll(other, "-", "")[:12], DisplayName: "Other", CreatedAt: time.Now().UTC()}
	if err := f.db.CreateUser(ctx, u, "hash"); err != nil {
		t.Fatal(err)
	}
	public := f.MustRoom(t)
	second := f.MustRoom(t)
	private, err := f.db.CreateRoom(ctx, f.user, chat.RoomCreate{Name: "private", Visibility: chat.Private})
	if err != nil {
		t.Fatal(err)
	}
	first := f.MustPost(t, public, "before") // a reply target

	type result struct {
		name    string
		msg     chat.Message
		created bool
		err     error
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	post := func(name, userID, roomID string, in chat.MessagePost) {
		wg.Go(func() {
			msg, created, err := f.db.PostMessage(ctx, userID, roomID, in)
			mu.Lock()
			results = append(results, result{name, msg, created, err})
			mu.Unlock()
		})
	}
	var replyTo string
	if msgs, _, err := f.db.FindMessages(ctx, f.user, public, chat.MessageFilter{Limit: 1}); err != nil || len(msgs) != 1 || msgs[0].Seq != first {
		t.Fatalf("find the first post: %v, %v", msgs, err)
	} else {
		replyTo = msgs[0].ID
	}
	for i := range 10 {
		post("plain", f.user, []string{public, second}[i%2], chat.MessagePost{Body: "plain " + strconv.Itoa(i)})
		post("same", f.user, public, chat.MessagePost{Body: "same body", ClientID: "same"})
		post("clash", f.user, second, chat.MessagePost{Body: "clash " + strconv.Itoa(i), ClientID: "clash"})
		post("outsider", other, public, chat.MessagePost{Body: "not a member"})
		post("hidden", other, private.ID, chat.MessagePost{Body: "not a member"})
	}
	post("reply", f.user, second, chat.MessagePost{Body: "reply across rooms", ReplyTo: replyTo})
	post("reply-ok", f.user, public, chat.MessagePost{Body: "reply", ReplyTo: replyTo})
	wg.Wait()

	count := map[string]map[string]int{}
	var sameIDs, clashIDs []string
	for _, r := range results {
		outcome := "created"
		switch {
		case r.err != nil:
			outcome = string(chat.ErrorCode(r.err))
		case !r.created:
			outcome = "repeat"
		}
		if count[r.name] == nil {
			count[r.name] = map[string]int{}
		}
		count[r.name][outcome]++
		if r.err == nil && r.name == "same" {
			sameIDs = append(sameIDs, r.msg.ID)
		}
		if r.err == nil && r.name == "clash" {
			clashIDs = append(clashIDs, r.msg.ID)
		}
	}
	t.Logf("outcomes: %v", count)
	if c := count["plain"]; c["created"] != 10 {
		t.Errorf("plain posts: %v, want 10 created", c)
	}
	if c := count["same"]; c["created"] != 1 || c["repeat"] != 9 {
		t.Errorf("one client_id, one body, 10 times: %v, want 1 created and 9 repeats", c)
	}
	for _, id := range sameIDs {
		if id != sameIDs[0] {
			t.Errorf("repeats answer message %s, the post was %s", id, sameIDs[0])
		}
	}
	if c := count["clash"]; c["created"] != 1 || c[string(chat.EConflict)] != 9 || len(clashIDs) != 1 {
		t.Errorf("one client_id, 10 bodies: %v, want 1 created and 9 conflicts", c)
	}
	if c := count["outsider"]; c[string(chat.EForbidden)] != 10 {
		t.Errorf("non-member in a public room: %v, want 10 forbidden", c)
	}
	if c := count["hidden"]; c[string(chat.ENotFound)] != 10 {
		t.Errorf("non-member in a private room: %v, want 10 not found", c)
	}
	if c := count["reply"]; c[string(chat.EInvalid)] != 1 {
		t.Errorf("reply to another room's message: %v, want invalid", c)
	}
	if c := count["reply-ok"]; c["created"] != 1 {
		t.Errorf("reply: %v, want created", c)
	}

	// Past the burst, concurrently: some posts are refused, in the same
	// groups as accepted ones, which are stored all the same.
	results = nil
	for i := range 40 {
		post("over", f.user, []string{public, second}[i%2], chat.MessagePost{Body: "over " + strconv.Itoa(i)})
	}
	wg.Wait()
	var created, refused int
	for _, r := range results {
		switch {
		case r.err == nil && r.created:
			created++
		case chat.ErrorCode(r.err) == chat.ETooMany:
			refused++
		default:
			t.Errorf("post over the burst: created %v, %v", r.created, r.err)
		}
	}
	if created == 0 || refused == 0 {
		t.Errorf("40 posts over a burst of 36: %d created, %d refused; want some of each", created, refused)
	}

	for _, roomID := range []string{public, second} {
		last, err := f.db.LastSeq(ctx, roomID)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := f.db.ReadEvents(ctx, roomID, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range evs {
			if ev.Seq != int64(i+1) {
				t.Fatalf("room log: event %d has seq %d", i, ev.Seq)
			}
		}
		if int64(len(evs)) != last {
			t.Errorf("room log holds %d events, last_seq is %d", len(evs), last)
		}
	}
}

// MustGroupState waits until the group committer has running groups in
// flight and queued posts waiting (it signals neither, so this polls).
func MustGroupState(tb testing.TB, db *postgres.DB, running, queued int) {
	tb.Helper()
	for deadline := time.Now().Add(listenWait); ; time.Sleep(time.Millisecond) {
		r, q := postgres.GroupState(db)
		if r == running && q == queued {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("group committer: %d running, %d queued; want %d and %d", r, q, running, queued)
		}
	}
}

// MustTokens is userID's write bucket's tokens, burst when it has none.
func (f *eventFixture) MustTokens(tb testing.TB, userID string, burst float64) float64 {
	tb.Helper()
	var tokens float64
	err := f.db.Pool().QueryRow(tb.Context(), `SELECT tokens FROM write_buckets WHERE user_id = $1`, userID).Scan(&tokens)
	if errors.Is(err, pgx.ErrNoRows) {
		return burst
	}
	if err != nil {
		tb.Fatalf("read write bucket: %v", err)
	}
	return tokens
}

// TestGroupRepeatedClientID posts one author's client_id twice in one
// group, as a client retrying while its first attempt is still queued:
// the first instance is charged and the repeat is answered as in a later
// group (the repeat of the stored message, or its conflict) without a
// charge of its own.
func TestGroupRepeatedClientID(t *testing.T) {
	const burst = 1000 // the blockers' author posts two per case
	// A refill too slow to show in the tokens read back.
	f := MustEventFixture(t, 8, postgres.WithLimits(postgres.Limits{PostRate: 1e-9, PostBurst: burst}))
	ctx := t.Context()
	room := f.MustRoom(t)
	blocked := f.MustRoom(t) // its posts hold the group slots
	elsewhere := f.MustRoom(t)
	otherMsg, _, err := f.db.PostMessage(ctx, f.user, elsewhere, chat.MessagePost{Body: "in another room"})
	if err != nil {
		t.Fatal(err)
	}

	type post struct {
		author  int // index into the case's authors
		body    string
		replyTo string
	}
	tests := []struct {
		name    string
		authors int
		empty   bool // the authors' buckets hold no token
		posts   [2]post
		want    [2]string // "created", "repeat" or an error code
		// stored messages under the client_id, per author; charges, per
		// author.
		stored, charges []int
	}{
		{"SameBody", 1, false, [2]post{{0, "hello", ""}, {0, "hello", ""}},
			[2]string{"created", "repeat"}, []int{1}, []int{1}},
		{"DifferentBody", 1, false, [2]post{{0, "hello", ""}, {0, "goodbye", ""}},
			[2]string{"created", string(chat.EConflict)}, []int{1}, []int{1}},
		// Refused by the limit: the repeat gets the same answer and adds
		// no debt.
		{"OverLimit", 1, true, [2]post{{0, "hello", ""}, {0, "hello", ""}},
			[2]string{string(chat.ETooMany), string(chat.ETooMany)}, []int{0}, []int{1}},
		// Refused for its reply_to: the repeat, which names none, is a
		// post of its own and takes the first instance's charge.
		{"FirstRefusedForItsReply", 1, false, [2]post{{0, "hello", otherMsg.ID}, {0, "hello", ""}},
			[2]string{string(chat.EInvalid), "created"}, []int{1}, []int{1}},
		// A client_id is one author's: another author's is another post.
		{"OtherAuthor", 2, false, [2]post{{0, "hello", ""}, {1, "hello", ""}},
			[2]string{"created", "created"}, []int{1, 1}, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authors := make([]string, tt.authors)
			for i := range authors {
				authors[i] = f.MustUser(t)
				if _, err := f.db.JoinRoom(ctx, authors[i], room); err != nil {
					t.Fatal(err)
				}
				if tt.empty {
					if _, err := f.db.Pool().Exec(ctx, `INSERT INTO write_buckets (user_id, tokens, updated_at) VALUES ($1, 0, clock_timestamp())`,
						authors[i]); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := make([]float64, len(authors))
			for i, a := range authors {
				before[i] = f.MustTokens(t, a, burst)
			}

			// Fill every group slot with a post waiting for the blocked
			// room's lock, one slot at a time (two posts queued at once
			// would share one group), so the two posts below queue
			// together and the next group takes both.
			release := MustLockRoom(t, f.url, blocked)
			var wg sync.WaitGroup
			for i := range postgres.MaxGroups {
				wg.Go(func() {
					if _, _, err := f.db.PostMessage(ctx, f.user, blocked, chat.MessagePost{Body: "blocker " + strconv.Itoa(i)}); err != nil {
						t.Errorf("blocker: %v", err)
					}
				})
				MustGroupState(t, f.db, i+1, 0)
			}
			clientID := "retry-" + tt.name
			var got [2]struct {
				msg     chat.Message
				created bool
				err     error
			}
			// Both wait in the queue at once, in this order.
			for i, p := range tt.posts {
				wg.Go(func() {
					g := &got[i]
					g.msg, g.created, g.err = f.db.PostMessage(ctx, authors[p.author], room,
						chat.MessagePost{Body: p.body, ClientID: clientID, ReplyTo: p.replyTo})
				})
				MustGroupState(t, f.db, postgres.MaxGroups, i+1)
			}
			release()
			wg.Wait()

			for i, g := range got {
				outcome := "created"
				switch {
				case g.err != nil:
					outcome = string(chat.ErrorCode(g.err))
				case !g.created:
					outcome = "repeat"
				}
				if outcome != tt.want[i] {
					t.Errorf("post %d: %s (%v), want %s", i, outcome, g.err, tt.want[i])
				}
			}
			if tt.want == [2]string{"created", "repeat"} && (got[0].msg.ID == "" || got[1].msg.ID != got[0].msg.ID) {
				t.Errorf("answers name messages %q and %q, want the same one", got[0].msg.ID, got[1].msg.ID)
			}
			for i, a := range authors {
				var stored int
				if err := f.db.Pool().QueryRow(ctx, `SELECT count(*) FROM messages WHERE room_id = $1 AND author_id = $2 AND client_id = $3`,
					room, a, clientID).Scan(&stored); err != nil {
					t.Fatal(err)
				}
				if stored != tt.stored[i] {
					t.Errorf("author %d: %d messages stored under the client_id, want %d", i, stored, tt.stored[i])
				}
				charged := before[i] - f.MustTokens(t, a, burst)
				if math.Abs(charged-float64(tt.charges[i])) > 1e-3 {
					t.Errorf("author %d charged %.3f tokens, want %d", i, charged, tt.charges[i])
				}
			}
		})
	}
}

package postgres_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

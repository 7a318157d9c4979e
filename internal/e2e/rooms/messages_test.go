package rooms

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// TestMessages: posting, client_id idempotency, seq under concurrent posts,
// and history paging.
func TestMessages(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	posters := []*e2e.Client{owner}
	for i := range 4 {
		posters = append(posters, e.MustUser(t, fmt.Sprintf("poster%d", i)))
	}
	outsider := e.MustUser(t, "outsider")
	mustRoom := func(t *testing.T, vis chat.Visibility) chat.Room {
		t.Helper()
		room := owner.MustCreateRoom(t, "messages", vis)
		for _, p := range posters[1:] {
			MustAddMember(t, owner, room.ID, p.Session.User.ID)
		}
		return MustGetRoom(t, owner, room.ID)
	}

	t.Run("Post", func(t *testing.T) {
		room := mustRoom(t, chat.Private)
		poster := posters[1]
		for _, tc := range []struct {
			name string
			body map[string]string
		}{
			{"Plain", map[string]string{"body": "hello, room"}},
			{"KeptExactly", map[string]string{"body": "  spaced\tout\n\n  "}},
			{"WithClientID", map[string]string{"body": "once", "client_id": "c-1"}},
			{"LongestClientID", map[string]string{"body": "x", "client_id": strings.Repeat("k", 64)}},
			{"EmptyClientID", map[string]string{"body": "no key", "client_id": ""}},
			{"OneChar", map[string]string{"body": "."}},
			{"WhiteSpaceAndText", map[string]string{"body": "\u3000a\u3000"}},
			{"Longest", map[string]string{"body": strings.Repeat("a", 4000)}},
			// 4000 code points of four bytes each: limits count code
			// points, not bytes.
			{"LongestMultiByte", map[string]string{"body": strings.Repeat("😀", 4000)}},
			{"LongestTwoByte", map[string]string{"body": strings.Repeat("ü", 4000)}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := MustGetRoom(t, poster, room.ID)
				resp := poster.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/messages", tc.body)
				m := MustDecode[chat.Message](t, resp, http.StatusCreated)
				want := chat.Message{ID: m.ID, RoomID: room.ID, Seq: before.LastSeq + 1, Body: tc.body["body"], ClientID: tc.body["client_id"], CreatedAt: m.CreatedAt,
					Author:    chat.Author{ID: poster.Session.User.ID, Username: poster.Session.User.Username, DisplayName: poster.Session.User.DisplayName},
					Reactions: []chat.Reaction{}}
				if !reflect.DeepEqual(m, want) || m.ID == "" || m.CreatedAt.IsZero() {
					t.Fatalf("posted %+v, want %+v", m, want)
				}
				if _, ok := tc.body["client_id"]; (!ok || tc.body["client_id"] == "") && strings.Contains(string(resp.Body), "client_id") {
					t.Fatalf("client_id in a message posted without one: %s", resp.Body)
				}
				if after := MustGetRoom(t, poster, room.ID); after.LastSeq != m.Seq {
					t.Fatalf("room last_seq %d, message seq %d", after.LastSeq, m.Seq)
				}
				ev := e.MustLastEvent(t, room.ID)
				if ev.Type != "message" || ev.SubjectID != poster.Session.User.ID || ev.Data["id"] != m.ID || ev.Data["body"] != tc.body["body"] {
					t.Fatalf("last event %+v, want the message", ev)
				}
				got := MustHistory(t, owner, room.ID, q("after", fmt.Sprint(before.LastSeq)))
				if len(got.Messages) != 1 || !reflect.DeepEqual(got.Messages[0], m) || got.HasMore {
					t.Fatalf("history %+v, want just %+v", got, m)
				}
			})
		}
	})

	t.Run("ClientID", func(t *testing.T) {
		room := mustRoom(t, chat.Public)
		alice, bob := posters[1], posters[2]
		first := MustDecode[chat.Message](t, alice.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/messages", map[string]string{"body": "hi", "client_id": "k1"}), http.StatusCreated)
		for _, tc := range []struct {
			name     string
			poster   *e2e.Client
			roomID   string
			body     map[string]string
			want     int
			sameAsK1 bool
		}{
			{"Repeat", alice, room.ID, map[string]string{"body": "hi", "client_id": "k1"}, http.StatusOK, true},
			{"RepeatAgain", alice, room.ID, map[string]string{"body": "hi", "client_id": "k1"}, http.StatusOK, true},
			{"DifferentBody", alice, room.ID, map[string]string{"body": "hi!", "client_id": "k1"}, http.StatusConflict, false},
			{"SameBodyWithoutKey", alice, room.ID, map[string]string{"body": "hi"}, http.StatusCreated, false},
			{"OtherAuthor", bob, room.ID, map[string]string{"body": "hi", "client_id": "k1"}, http.StatusCreated, false},
			{"OtherRoom", alice, mustRoom(t, chat.Public).ID, map[string]string{"body": "hi", "client_id": "k1"}, http.StatusCreated, false},
			{"KeyIsCaseSensitive", alice, room.ID, map[string]string{"body": "hi", "client_id": "K1"}, http.StatusCreated, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				resp := tc.poster.Do(t, http.MethodPost, "/v1/rooms/"+tc.roomID+"/messages", tc.body)
				MustStatus(t, resp, tc.want)
				after := e.MustCounts(t)
				if tc.want == http.StatusCreated {
					if after.Messages != before.Messages+1 || after.LastSeqSum != before.LastSeqSum+1 {
						t.Fatalf("counts %+v -> %+v, want one message more", before, after)
					}
					return
				}
				if after != before {
					t.Fatalf("counts %+v -> %+v, want no change", before, after)
				}
				if tc.sameAsK1 {
					var m chat.Message
					resp.JSON(t, &m)
					if !reflect.DeepEqual(m, first) {
						t.Fatalf("repeat answered %+v, want the original %+v", m, first)
					}
				}
			})
		}
	})

	// 50 posts at once from five members take 50 consecutive seq values,
	// each once, and the log stays gap-free.
	t.Run("ConcurrentPostsTakeConsecutiveSeqs", func(t *testing.T) {
		const n = 50
		room := mustRoom(t, chat.Public)
		before := e.MustCounts(t)
		var who []*e2e.Client
		var bodies []map[string]string
		for i := range n {
			who = append(who, posters[i%len(posters)])
			bodies = append(bodies, map[string]string{"body": fmt.Sprintf("concurrent %d", i)})
		}
		results := MustDoConcurrently(t, posts(room.ID, who, bodies))

		bySeq := map[int64]chat.Message{}
		for i, resp := range results {
			m := MustDecode[chat.Message](t, resp, http.StatusCreated)
			if m.Body != bodies[i]["body"] || m.Author.ID != who[i].Session.User.ID {
				t.Fatalf("post %d answered %+v", i, m)
			}
			if prev, dup := bySeq[m.Seq]; dup {
				t.Fatalf("seq %d given twice: %s and %s", m.Seq, prev.ID, m.ID)
			}
			bySeq[m.Seq] = m
		}
		for seq := room.LastSeq + 1; seq <= room.LastSeq+n; seq++ {
			if _, ok := bySeq[seq]; !ok {
				t.Fatalf("no post took seq %d (seqs %v)", seq, slices.Sorted(maps.Keys(bySeq)))
			}
		}
		if after := MustGetRoom(t, owner, room.ID); after.LastSeq != room.LastSeq+n {
			t.Fatalf("last_seq %d -> %d, want +%d", room.LastSeq, after.LastSeq, n)
		}
		if after := e.MustCounts(t); after.Messages != before.Messages+n || after.Events != before.Events+n {
			t.Fatalf("counts %+v -> %+v, want %d messages more", before, after, n)
		}
		evs := e.MustEvents(t, room.ID) // checks the log is gap-free
		for _, ev := range evs[room.LastSeq:] {
			if m := bySeq[ev.Seq]; ev.Type != "message" || ev.Data["id"] != m.ID {
				t.Fatalf("event %d: %+v, want message %s", ev.Seq, ev, m.ID)
			}
		}
		hist := MustHistory(t, owner, room.ID, q("after", fmt.Sprint(room.LastSeq), "limit", "100"))
		if len(hist.Messages) != n || hist.HasMore {
			t.Fatalf("history holds %d messages (has_more %v), want %d", len(hist.Messages), hist.HasMore, n)
		}
		for i, m := range hist.Messages {
			if !reflect.DeepEqual(m, bySeq[room.LastSeq+int64(i)+1]) {
				t.Fatalf("history %d: %+v, want %+v", i, m, bySeq[room.LastSeq+int64(i)+1])
			}
		}
	})

	// The same client_id posted 20 times at once stores one message and
	// answers every post with it: one 201, nineteen 200.
	t.Run("ConcurrentRepeatsStoreOneMessage", func(t *testing.T) {
		const n = 20
		room := mustRoom(t, chat.Public)
		before := e.MustCounts(t)
		poster := posters[3]
		var who []*e2e.Client
		var bodies []map[string]string
		for range n {
			who = append(who, poster)
			bodies = append(bodies, map[string]string{"body": "exactly once", "client_id": "retry-me"})
		}
		results := MustDoConcurrently(t, posts(room.ID, who, bodies))
		statuses := map[int]int{}
		var m chat.Message
		for i, resp := range results {
			statuses[resp.Status]++
			var got chat.Message
			resp.JSON(t, &got)
			if i == 0 {
				m = got
			}
			if !reflect.DeepEqual(got, m) || got.ID == "" {
				t.Fatalf("post %d answered %d %s, post 0 %+v", i, resp.Status, resp.Body, m)
			}
		}
		if statuses[http.StatusCreated] != 1 || statuses[http.StatusOK] != n-1 {
			t.Fatalf("statuses %v, want one 201 and %d 200", statuses, n-1)
		}
		if m.Seq != room.LastSeq+1 || m.ClientID != "retry-me" || m.Body != "exactly once" {
			t.Fatalf("message %+v, want seq %d", m, room.LastSeq+1)
		}
		if after := MustGetRoom(t, owner, room.ID); after.LastSeq != room.LastSeq+1 {
			t.Fatalf("last_seq %d -> %d, want +1", room.LastSeq, after.LastSeq)
		}
		if after := e.MustCounts(t); after.Messages != before.Messages+1 || after.Events != before.Events+1 {
			t.Fatalf("counts %+v -> %+v, want one message more", before, after)
		}
		hist := MustHistory(t, owner, room.ID, q("after", "0"))
		if len(hist.Messages) != 1 || !reflect.DeepEqual(hist.Messages[0], m) {
			t.Fatalf("history %+v, want only %+v", hist.Messages, m)
		}

		t.Run("DifferentBodyConflicts", func(t *testing.T) {
			before := e.MustCounts(t)
			poster.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/messages", map[string]string{"body": "something else", "client_id": "retry-me"}).
				MustProblem(t, http.StatusConflict)
			if after := e.MustCounts(t); after != before {
				t.Fatalf("counts %+v -> %+v, want no change", before, after)
			}
		})
	})

	// Every kind of room change at once: joins (one of them repeated),
	// a leave, posts and updates all take the next seq under the room lock,
	// so the log stays gap-free and a repeated join is recorded once.
	t.Run("ConcurrentRoomEventsKeepTheLogGapFree", func(t *testing.T) {
		room := owner.MustCreateRoom(t, "busy", chat.Public)
		leaver, repeater := posters[1], posters[2]
		MustAddMember(t, owner, room.ID, leaver.Session.User.ID)
		before := MustGetRoom(t, owner, room.ID)
		path := "/v1/rooms/" + room.ID
		var calls []call
		for range 5 {
			calls = append(calls, call{repeater, http.MethodPost, path + "/join", nil})
		}
		for _, p := range posters[3:] {
			calls = append(calls, call{p, http.MethodPost, path + "/join", nil})
		}
		calls = append(calls, call{leaver, http.MethodPost, path + "/leave", nil})
		for i := range 20 {
			calls = append(calls, call{owner, http.MethodPost, path + "/messages", map[string]string{"body": fmt.Sprint("busy ", i)}})
		}
		for i := range 3 {
			calls = append(calls, call{owner, http.MethodPatch, path, map[string]string{"topic": fmt.Sprint("topic ", i)}})
		}
		for i, resp := range MustDoConcurrently(t, calls) {
			if resp.Status >= 300 {
				t.Fatalf("call %d (%s %s): %d %s", i, calls[i].method, calls[i].path, resp.Status, resp.Body)
			}
		}
		joiners := 1 + len(posters[3:])
		wantSeq := before.LastSeq + int64(joiners) + 1 + 20 + 3
		after := MustGetRoom(t, owner, room.ID)
		if after.LastSeq != wantSeq || after.MemberCount != before.MemberCount+joiners-1 {
			t.Fatalf("room %+v, want last_seq %d and %d members", after, wantSeq, before.MemberCount+joiners-1)
		}
		if ms := MustMembers(t, owner, room.ID); len(ms) != after.MemberCount {
			t.Fatalf("%d members listed, member_count %d", len(ms), after.MemberCount)
		}
		types := map[string]int{}
		for _, ev := range e.MustEvents(t, room.ID)[before.LastSeq:] { // gap-free
			types[ev.Type]++
			if ev.Type == "member.joined" && ev.SubjectID == repeater.Session.User.ID {
				types["repeater joined"]++
			}
		}
		want := map[string]int{"member.joined": joiners, "repeater joined": 1, "member.left": 1, "message": 20, "room.updated": 3}
		if !maps.Equal(types, want) {
			t.Fatalf("events %v, want %v", types, want)
		}
	})

	t.Run("History", func(t *testing.T) {
		testHistory(t, e, owner, posters[1:], outsider)
	})
}

// testHistory posts 120 messages interleaved with joins, leaves and a room
// update, so message seqs have holes, then pages through them.
func testHistory(t *testing.T, e *env, owner *e2e.Client, users []*e2e.Client, outsider *e2e.Client) {
	const total = 120
	room := owner.MustCreateRoom(t, "history", chat.Public)
	joined := make([]bool, len(users))
	var posted []chat.Message
	for i := range total {
		if i%9 == 4 {
			// Toggle a user's membership: a member.joined or member.left
			// takes the next seq.
			u := (i / 9) % len(users)
			if joined[u] {
				MustStatus(t, users[u].Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/leave", nil), http.StatusNoContent)
			} else {
				users[u].MustJoin(t, room.ID)
			}
			joined[u] = !joined[u]
		}
		if i == 60 {
			MustStatus(t, owner.Do(t, http.MethodPatch, "/v1/rooms/"+room.ID, map[string]string{"topic": "halfway"}), http.StatusOK)
		}
		poster := owner
		for u := range users {
			if joined[u] && (i+u)%3 == 0 {
				poster = users[u]
			}
		}
		posted = append(posted, poster.MustPost(t, room.ID, fmt.Sprintf("message %03d", i)))
	}
	last := posted[total-1].Seq
	if holes := last - posted[0].Seq + 1 - total; holes < 10 {
		t.Fatalf("fixture: only %d holes in the message seqs", holes)
	}
	final := MustGetRoom(t, owner, room.ID)
	// A newcomer sees the whole history, from before they joined.
	outsider.MustJoin(t, room.ID)

	for _, limit := range []int{7, 8, 1, 100} {
		t.Run(fmt.Sprintf("Backward%d", limit), func(t *testing.T) {
			var pages [][]chat.Message
			p := MustHistory(t, outsider, room.ID, q("limit", fmt.Sprint(limit)))
			for {
				mustAscending(t, p.Messages)
				pages = append(pages, p.Messages)
				if !p.HasMore {
					break
				}
				if len(p.Messages) != limit || len(pages) > total {
					t.Fatalf("page %d: %d messages with has_more, limit %d", len(pages), len(p.Messages), limit)
				}
				p = MustHistory(t, outsider, room.ID, q("before", fmt.Sprint(p.Messages[0].Seq), "limit", fmt.Sprint(limit)))
			}
			var got []chat.Message
			for _, pg := range slices.Backward(pages) {
				got = append(got, pg...)
			}
			mustSameMessages(t, got, posted)
			if n := len(pages[len(pages)-1]); n != (total-1)%limit+1 {
				t.Fatalf("oldest page holds %d messages, want %d", n, (total-1)%limit+1)
			}
		})
		t.Run(fmt.Sprintf("Forward%d", limit), func(t *testing.T) {
			var got []chat.Message
			p := MustHistory(t, outsider, room.ID, q("after", "0", "limit", fmt.Sprint(limit)))
			for pages := 1; ; pages++ {
				mustAscending(t, p.Messages)
				got = append(got, p.Messages...)
				if !p.HasMore {
					break
				}
				if len(p.Messages) != limit || pages > total {
					t.Fatalf("page %d: %d messages with has_more, limit %d", pages, len(p.Messages), limit)
				}
				p = MustHistory(t, outsider, room.ID, q("after", fmt.Sprint(p.Messages[len(p.Messages)-1].Seq), "limit", fmt.Sprint(limit)))
			}
			mustSameMessages(t, got, posted)
		})
	}

	// seqOf is the seq of the i-th message posted.
	seqOf := func(i int) string { return fmt.Sprint(posted[i].Seq) }
	// A seq that no message holds (a member or room event took it).
	hole := int64(0)
	for i := 1; i < total && hole == 0; i++ {
		if posted[i].Seq > posted[i-1].Seq+1 {
			hole = posted[i-1].Seq + 1
		}
	}
	holeAt := slices.IndexFunc(posted, func(m chat.Message) bool { return m.Seq > hole })
	for _, tc := range []struct {
		name     string
		query    string
		from, to int // posted[from:to]
		hasMore  bool
	}{
		{"NoCursorIsLatest", "", total - 50, total, true},
		{"NoCursorLimit", "limit=10", total - 10, total, true},
		{"NoCursorAll", "limit=100", total - 100, total, true},
		{"AfterZeroIsFromStart", "after=0&limit=5", 0, 5, true},
		{"AfterZeroDefaultLimit", "after=0", 0, 50, true},
		{"AfterMessage", "after=" + seqOf(10) + "&limit=3", 11, 14, true},
		{"AfterHole", fmt.Sprintf("after=%d&limit=2", hole), holeAt, holeAt + 2, true},
		{"BeforeHole", fmt.Sprintf("before=%d&limit=2", hole), holeAt - 2, holeAt, true},
		{"BeforeMessage", "before=" + seqOf(10) + "&limit=3", 7, 10, true},
		{"BeforeReachesStart", "before=" + seqOf(3) + "&limit=10", 0, 3, false},
		{"BeforeExactlyToStart", "before=" + seqOf(3) + "&limit=3", 0, 3, false},
		{"AfterReachesEnd", "after=" + seqOf(total-4) + "&limit=10", total - 3, total, false},
		{"AfterExactlyToEnd", "after=" + seqOf(total-4) + "&limit=3", total - 3, total, false},
		{"AfterLast", "after=" + seqOf(total-1), total, total, false},
		{"AfterEveryEvent", fmt.Sprintf("after=%d", final.LastSeq+1), total, total, false},
		{"BeforeFirst", "before=" + seqOf(0), 0, 0, false},
		{"BeforeZero", "before=0", 0, 0, false},
		{"BeforeBeyondEnd", "before=1000000&limit=4", total - 4, total, true},
		{"Limit1", "limit=1", total - 1, total, true},
		// An empty cursor is no cursor, as an empty limit is the default.
		{"EmptyBeforeIsNoCursor", "before=&limit=3", total - 3, total, true},
		{"EmptyAfterIsNoCursor", "after=&limit=3", total - 3, total, true},
		{"EmptyCursors", "before=&after=&limit=", total - 50, total, true},
		{"EmptyBeforeWithAfter", "before=&after=0&limit=2", 0, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := MustDecode[page](t, outsider.Do(t, http.MethodGet, "/v1/rooms/"+room.ID+"/messages?"+tc.query, nil), http.StatusOK)
			if p.Messages == nil {
				t.Fatal("messages is null, want an array")
			}
			mustSameMessages(t, p.Messages, posted[tc.from:tc.to])
			if p.HasMore != tc.hasMore {
				t.Fatalf("has_more %v, want %v", p.HasMore, tc.hasMore)
			}
		})
	}

	for _, tc := range []struct{ name, query string }{
		{"BeforeAndAfter", "before=50&after=10"},
		{"BeforeAndAfterZero", "before=0&after=0"},
		{"BeforeNegative", "before=-1"},
		{"AfterNegative", "after=-5"},
		{"BeforeNotANumber", "before=ten"},
		{"AfterNotAnInteger", "after=1.5"},
		{"Limit0", "limit=0"},
		{"Limit101", "limit=101"},
		{"LimitNegative", "limit=-1"},
		{"LimitNotANumber", "limit=all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			MustStatus(t, outsider.Do(t, http.MethodGet, "/v1/rooms/"+room.ID+"/messages?"+tc.query, nil), http.StatusUnprocessableEntity)
		})
	}
}

func mustAscending(tb testing.TB, ms []chat.Message) {
	tb.Helper()
	for i := 1; i < len(ms); i++ {
		if ms[i].Seq <= ms[i-1].Seq {
			tb.Fatalf("page not ascending: seq %d after %d", ms[i].Seq, ms[i-1].Seq)
		}
	}
}

func mustSameMessages(tb testing.TB, got, want []chat.Message) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			tb.Fatalf("message %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

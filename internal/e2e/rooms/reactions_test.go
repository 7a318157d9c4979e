package rooms

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// TestReactions: adding and taking back reactions, idempotently, the
// counts and the caller's own in history, the keys refused, and exact
// counts under concurrent reactions.
func TestReactions(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	alice := e.MustUser(t, "alice")
	bob := e.MustUser(t, "bob")
	outsider := e.MustUser(t, "outsider")
	room := owner.MustCreateRoom(t, "reactions", chat.Public)
	alice.MustJoin(t, room.ID)
	bob.MustJoin(t, room.ID)
	private := owner.MustCreateRoom(t, "hidden", chat.Private)
	secret := owner.MustPost(t, private.ID, "secret")

	t.Run("AddAndRemove", func(t *testing.T) {
		msg := owner.MustPost(t, room.ID, "react to me")
		if r := MustReact(t, alice, room.ID, msg.ID, "👍"); r != (chat.Reaction{Key: "👍", Count: 1}) {
			t.Fatalf("first reaction answered %+v", r)
		}
		ev := e.MustLastEvent(t, room.ID)
		if ev.Type != "reaction.added" || ev.Data["key"] != "👍" || ev.Data["count"] != float64(1) || ev.Data["user_id"] != alice.Session.User.ID ||
			ev.Data["message_id"] != msg.ID || ev.Data["message_seq"] != float64(msg.Seq) || ev.SubjectID != alice.Session.User.ID {
			t.Fatalf("last event %+v, want reaction.added", ev)
		}
		before := e.MustCounts(t)
		if r := MustReact(t, alice, room.ID, msg.ID, "👍"); r != (chat.Reaction{Key: "👍", Count: 1}) {
			t.Fatalf("repeated reaction answered %+v", r)
		}
		if after := e.MustCounts(t); after != before {
			t.Fatalf("a repeated reaction recorded something: %+v -> %+v", before, after)
		}
		if r := MustReact(t, bob, room.ID, msg.ID, "👍"); r.Count != 2 {
			t.Fatalf("second user's reaction answered %+v", r)
		}
		MustReact(t, bob, room.ID, msg.ID, "🎉")
		yes, no := true, false
		for _, tc := range []struct {
			viewer *e2e.Client
			want   []chat.Reaction
		}{
			{alice, []chat.Reaction{{Key: "👍", Count: 2, Me: &yes}, {Key: "🎉", Count: 1, Me: &no}}},
			{bob, []chat.Reaction{{Key: "👍", Count: 2, Me: &yes}, {Key: "🎉", Count: 1, Me: &yes}}},
			{owner, []chat.Reaction{{Key: "👍", Count: 2, Me: &no}, {Key: "🎉", Count: 1, Me: &no}}},
		} {
			got := MustMessage(t, tc.viewer, room.ID, msg.ID)
			if !reflect.DeepEqual(got.Reactions, tc.want) {
				t.Fatalf("%s sees reactions %s, want %s", tc.viewer.Session.User.Username, show(got.Reactions), show(tc.want))
			}
			hist := MustHistory(t, tc.viewer, room.ID, q("after", fmt.Sprint(msg.Seq-1), "limit", "1"))
			if !reflect.DeepEqual(hist.Messages[0].Reactions, tc.want) {
				t.Fatalf("%s sees reactions %s in history, want %s", tc.viewer.Session.User.Username, show(hist.Messages[0].Reactions), show(tc.want))
			}
		}
		MustStatus(t, alice.Do(t, http.MethodDelete, reactionPath(room.ID, msg.ID, "👍"), nil), http.StatusNoContent)
		ev = e.MustLastEvent(t, room.ID)
		if ev.Type != "reaction.removed" || ev.Data["count"] != float64(1) || ev.Data["user_id"] != alice.Session.User.ID {
			t.Fatalf("last event %+v, want reaction.removed", ev)
		}
		before = e.MustCounts(t)
		MustStatus(t, alice.Do(t, http.MethodDelete, reactionPath(room.ID, msg.ID, "👍"), nil), http.StatusNoContent)
		MustStatus(t, alice.Do(t, http.MethodDelete, reactionPath(room.ID, msg.ID, "never"), nil), http.StatusNoContent)
		if after := e.MustCounts(t); after != before {
			t.Fatalf("removing no reaction recorded something: %+v -> %+v", before, after)
		}
		if got := MustMessage(t, alice, room.ID, msg.ID).Reactions; !reflect.DeepEqual(got, []chat.Reaction{{Key: "👍", Count: 1, Me: &no}, {Key: "🎉", Count: 1, Me: &no}}) {
			t.Fatalf("alice sees %s after taking hers back", show(got))
		}
	})

	t.Run("Keys", func(t *testing.T) {
		msg := owner.MustPost(t, room.ID, "keys")
		for _, tc := range []struct {
			name, key string
			want      int
		}{
			{"Emoji", "😀", http.StatusOK},
			{"ZWJSequence", "👩‍💻", http.StatusOK},
			{"Flag", "🇫🇷", http.StatusOK},
			{"SkinTone", "👍🏽", http.StatusOK},
			{"ShortCode", ":+1:", http.StatusOK},
			{"Slash", "a/b", http.StatusOK},
			{"Percent", "100%", http.StatusOK},
			{"QuestionMark", "?", http.StatusOK},
			{"Longest", strings.Repeat("k", 32), http.StatusOK},
			{"LongestMultiByte", strings.Repeat("😀", 32), http.StatusOK},
			{"ThreeDots", "...", http.StatusOK},
			{"TooLong", strings.Repeat("k", 33), http.StatusUnprocessableEntity},
			{"Space", "a b", http.StatusUnprocessableEntity},
			{"Tab", "a\tb", http.StatusUnprocessableEntity},
			{"NoBreakSpace", "a\u00a0b", http.StatusUnprocessableEntity},
			{"EmSpace", "\u2003", http.StatusUnprocessableEntity},
			{"LineSeparator", "a\u2028", http.StatusUnprocessableEntity},
			{"Bell", "a\u0007", http.StatusUnprocessableEntity},
			{"NUL", "a\x00", http.StatusUnprocessableEntity},
			{"DEL", "a\u007f", http.StatusUnprocessableEntity},
			{"C1Control", "a\u0085", http.StatusUnprocessableEntity},
			{"Dot", ".", http.StatusUnprocessableEntity},
			{"DotDot", "..", http.StatusUnprocessableEntity},
			{"InvalidUTF8", "\xff", http.StatusUnprocessableEntity},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				resp := alice.Do(t, http.MethodPut, reactionPath(room.ID, msg.ID, tc.key), nil)
				MustStatus(t, resp, tc.want)
				if tc.want == http.StatusOK {
					if r := MustDecode[chat.Reaction](t, resp, http.StatusOK); r.Key != tc.key || r.Count != 1 {
						t.Fatalf("answered %+v, want key %q with count 1", r, tc.key)
					}
					MustStatus(t, alice.Do(t, http.MethodDelete, reactionPath(room.ID, msg.ID, tc.key), nil), http.StatusNoContent)
					return
				}
				MustStatus(t, alice.Do(t, http.MethodDelete, reactionPath(room.ID, msg.ID, tc.key), nil), tc.want)
				if after := e.MustCounts(t); after != before {
					t.Fatalf("a refused key recorded something: %+v -> %+v", before, after)
				}
			})
		}
		// Literal dot segments, not percent-encoded, are refused too
		// rather than redirected.
		for _, key := range []string{".", ".."} {
			for _, method := range []string{http.MethodPut, http.MethodDelete} {
				MustStatus(t, alice.Do(t, method, messagePath(room.ID, msg.ID)+"/reactions/"+key, nil), http.StatusUnprocessableEntity)
			}
		}
	})

	t.Run("Refused", func(t *testing.T) {
		msg := owner.MustPost(t, room.ID, "members only")
		for _, tc := range []struct {
			name             string
			c                *e2e.Client
			roomID, msgID    string
			wantPut, wantDel int
		}{
			{"NonMemberPublic", outsider, room.ID, msg.ID, http.StatusForbidden, http.StatusForbidden},
			{"NonMemberPrivate", outsider, private.ID, secret.ID, http.StatusNotFound, http.StatusNotFound},
			{"UnknownMessage", alice, room.ID, unknownID(), http.StatusNotFound, http.StatusNotFound},
			{"NotAMessageID", alice, room.ID, "x", http.StatusNotFound, http.StatusNotFound},
			{"MessageOfAnotherRoom", owner, room.ID, secret.ID, http.StatusNotFound, http.StatusNotFound},
			{"UnknownRoom", alice, unknownID(), msg.ID, http.StatusNotFound, http.StatusNotFound},
			{"Anonymous", e.Anonymous(), room.ID, msg.ID, http.StatusUnauthorized, http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				MustStatus(t, tc.c.Do(t, http.MethodPut, reactionPath(tc.roomID, tc.msgID, "👍"), nil), tc.wantPut)
				MustStatus(t, tc.c.Do(t, http.MethodDelete, reactionPath(tc.roomID, tc.msgID, "👍"), nil), tc.wantDel)
				if after := e.MustCounts(t); after != before {
					t.Fatalf("counts %+v -> %+v", before, after)
				}
			})
		}
	})

	// Many users reacting at once with the same key: every reaction.added
	// carries a different count, 1 to n, and the final count is n; then
	// all of them take it back at once, down to 0.
	t.Run("Concurrent", func(t *testing.T) {
		const n = 24
		var users []*e2e.Client
		for i := range n {
			u := e.MustUser(t, fmt.Sprintf("fan%d", i))
			u.MustJoin(t, room.ID)
			users = append(users, u)
		}
		msg := owner.MustPost(t, room.ID, "popular")
		for _, add := range []bool{true, false} {
			method, wantStatus := http.MethodPut, http.StatusOK
			if !add {
				method, wantStatus = http.MethodDelete, http.StatusNoContent
			}
			before := MustGetRoom(t, owner, room.ID)
			var calls []call
			for _, u := range users {
				calls = append(calls, call{u, method, reactionPath(room.ID, msg.ID, "🔥"), nil})
			}
			for i, resp := range MustDoConcurrently(t, calls) {
				if resp.Status != wantStatus {
					t.Fatalf("call %d: %d %s", i, resp.Status, resp.Body)
				}
			}
			evs := e.MustEvents(t, room.ID)[before.LastSeq:]
			if len(evs) != n {
				t.Fatalf("%d events, want %d", len(evs), n)
			}
			seen := map[int]bool{}
			for _, ev := range evs {
				seen[int(ev.Data["count"].(float64))] = true
			}
			for c := range n {
				want := c + 1
				if !add {
					want = c
				}
				if !seen[want] {
					t.Fatalf("no event carried count %d: %v", want, seen)
				}
			}
			final := MustMessage(t, owner, room.ID, msg.ID).Reactions
			if add && (len(final) != 1 || final[0].Count != n) || !add && len(final) != 0 {
				t.Fatalf("reactions after the burst: %s", show(final))
			}
		}
	})
}

func show(rs []chat.Reaction) string {
	var b strings.Builder
	for _, r := range rs {
		me := "nil"
		if r.Me != nil {
			me = fmt.Sprint(*r.Me)
		}
		fmt.Fprintf(&b, "{%s %d me=%s}", r.Key, r.Count, me)
	}
	return "[" + b.String() + "]"
}

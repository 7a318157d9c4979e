package rooms

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func messagePath(roomID, messageID string) string {
	return "/v1/rooms/" + roomID + "/messages/" + messageID
}

func reactionPath(roomID, messageID, key string) string {
	return messagePath(roomID, messageID) + "/reactions/" + url.PathEscape(key)
}

// MustMessage reads one message as c sees it.
func MustMessage(tb testing.TB, c *e2e.Client, roomID, messageID string) chat.Message {
	tb.Helper()
	return MustDecode[chat.Message](tb, c.Do(tb, http.MethodGet, messagePath(roomID, messageID), nil), http.StatusOK)
}

// MustEdit edits a message and returns it after the edit.
func MustEdit(tb testing.TB, c *e2e.Client, roomID, messageID, body string) chat.Message {
	tb.Helper()
	return MustDecode[chat.Message](tb, c.Do(tb, http.MethodPatch, messagePath(roomID, messageID), map[string]string{"body": body}), http.StatusOK)
}

// MustReact adds c's reaction and returns the key's count.
func MustReact(tb testing.TB, c *e2e.Client, roomID, messageID, key string) chat.Reaction {
	tb.Helper()
	return MustDecode[chat.Reaction](tb, c.Do(tb, http.MethodPut, reactionPath(roomID, messageID, key), nil), http.StatusOK)
}

// MustPostWith posts a message with extra fields and returns it.
func MustPostWith(tb testing.TB, c *e2e.Client, roomID string, body map[string]string) chat.Message {
	tb.Helper()
	return MustDecode[chat.Message](tb, c.Do(tb, http.MethodPost, "/v1/rooms/"+roomID+"/messages", body), http.StatusCreated)
}

// TestEditAndDelete: editing (author only), deleting (author or owner), the
// tombstone left in history, and the events each records.
func TestEditAndDelete(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	alice := e.MustUser(t, "alice")
	bob := e.MustUser(t, "bob")
	room := owner.MustCreateRoom(t, "edits", chat.Public)
	alice.MustJoin(t, room.ID)
	bob.MustJoin(t, room.ID)
	other := owner.MustCreateRoom(t, "other", chat.Public)
	alice.MustJoin(t, other.ID)

	t.Run("Edit", func(t *testing.T) {
		msg := alice.MustPost(t, room.ID, "helo, room")
		before := e.MustCounts(t)
		got := MustEdit(t, alice, room.ID, msg.ID, "hello, room")
		if got.Body != "hello, room" || got.EditedAt == nil || got.ID != msg.ID || got.Seq != msg.Seq || !got.CreatedAt.Equal(msg.CreatedAt) {
			t.Fatalf("edited %+v, from %+v", got, msg)
		}
		if after := e.MustCounts(t); after.Events != before.Events+1 || after.Messages != before.Messages {
			t.Fatalf("counts %+v -> %+v, want one event more and no message more", before, after)
		}
		ev := e.MustLastEvent(t, room.ID)
		inner, _ := ev.Data["message"].(map[string]any)
		if ev.Type != "message.edited" || ev.SubjectID != alice.Session.User.ID || inner["body"] != "hello, room" || inner["id"] != msg.ID || inner["edited_at"] == nil {
			t.Fatalf("last event %+v, want message.edited with the new body", ev)
		}
		if !reflect.DeepEqual(MustMessage(t, bob, room.ID, msg.ID), got) {
			t.Fatalf("get after edit differs from the edit's answer")
		}
		hist := MustHistory(t, bob, room.ID, q("after", fmt.Sprint(msg.Seq-1), "limit", "1"))
		if len(hist.Messages) != 1 || !reflect.DeepEqual(hist.Messages[0], got) {
			t.Fatalf("history %+v, want the edited message", hist.Messages)
		}
		// The original message event keeps the body as posted: replays
		// show the message, then its edit.
		evs := e.MustEvents(t, room.ID)
		if orig := evs[msg.Seq-1]; orig.Type != "message" || orig.Data["body"] != "helo, room" {
			t.Fatalf("message event %+v, want the body as posted", orig)
		}

		t.Run("NoChange", func(t *testing.T) {
			before := e.MustCounts(t)
			again := MustEdit(t, alice, room.ID, msg.ID, "hello, room")
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("no-op edit answered %+v, want %+v", again, got)
			}
			if after := e.MustCounts(t); after != before {
				t.Fatalf("a no-op edit changed the database: %+v -> %+v", before, after)
			}
		})
		for _, tc := range []struct {
			name   string
			c      *e2e.Client
			roomID string
			msgID  string
			body   any
			want   int
		}{
			{"OthersMessage", bob, room.ID, msg.ID, map[string]string{"body": "mine now"}, http.StatusForbidden},
			{"OwnerCannotEdit", owner, room.ID, msg.ID, map[string]string{"body": "owner's words"}, http.StatusForbidden},
			{"UnknownMessage", alice, room.ID, unknownID(), map[string]string{"body": "x"}, http.StatusNotFound},
			{"NotAMessageID", alice, room.ID, "nope", map[string]string{"body": "x"}, http.StatusNotFound},
			{"MessageOfAnotherRoom", alice, other.ID, msg.ID, map[string]string{"body": "x"}, http.StatusNotFound},
			{"EmptyBody", alice, room.ID, msg.ID, map[string]string{"body": ""}, http.StatusUnprocessableEntity},
			{"WhiteSpaceBody", alice, room.ID, msg.ID, map[string]string{"body": " \u2003\n"}, http.StatusUnprocessableEntity},
			{"TooLong", alice, room.ID, msg.ID, map[string]string{"body": strings.Repeat("a", 4001)}, http.StatusUnprocessableEntity},
			{"NUL", alice, room.ID, msg.ID, map[string]string{"body": "a\x00b"}, http.StatusUnprocessableEntity},
			{"NoBody", alice, room.ID, msg.ID, map[string]string{}, http.StatusUnprocessableEntity},
			{"InvalidUTF8", alice, room.ID, msg.ID, []byte("{\"body\":\"\xff\"}"), http.StatusBadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				MustStatus(t, tc.c.Do(t, http.MethodPatch, messagePath(tc.roomID, tc.msgID), tc.body), tc.want)
				if after := e.MustCounts(t); after != before {
					t.Fatalf("a refused edit changed the database: %+v -> %+v", before, after)
				}
				if now := MustMessage(t, alice, room.ID, msg.ID); !reflect.DeepEqual(now, got) {
					t.Fatalf("a refused edit changed the message: %+v", now)
				}
			})
		}
	})

	t.Run("Delete", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			deleter *e2e.Client
		}{{"ByAuthor", alice}, {"ByOwner", owner}} {
			t.Run(tc.name, func(t *testing.T) {
				msg := alice.MustPost(t, room.ID, "to be deleted "+tc.name)
				MustReact(t, bob, room.ID, msg.ID, "👍")
				MustStatus(t, tc.deleter.Do(t, http.MethodDelete, messagePath(room.ID, msg.ID), nil), http.StatusNoContent)
				ev := e.MustLastEvent(t, room.ID)
				if ev.Type != "message.deleted" || ev.Data["message_id"] != msg.ID || ev.Data["message_seq"] != float64(msg.Seq) || ev.SubjectID != tc.deleter.Session.User.ID {
					t.Fatalf("last event %+v, want message.deleted of %s", ev, msg.ID)
				}
				tomb := MustMessage(t, bob, room.ID, msg.ID)
				want := msg
				want.Body, want.DeletedAt = "", tomb.DeletedAt
				if tomb.DeletedAt == nil || !reflect.DeepEqual(tomb, want) {
					t.Fatalf("tombstone %+v, want %+v with deleted_at", tomb, want)
				}
				hist := MustHistory(t, bob, room.ID, q("after", fmt.Sprint(msg.Seq-1), "limit", "1"))
				if len(hist.Messages) != 1 || !reflect.DeepEqual(hist.Messages[0], tomb) {
					t.Fatalf("history %+v, want the tombstone", hist.Messages)
				}
				// The logged message event is the tombstone too.
				if orig := e.MustEvents(t, room.ID)[msg.Seq-1]; orig.Data["body"] != "" || orig.Data["deleted_at"] == nil {
					t.Fatalf("message event after delete: %+v", orig)
				}
				for _, again := range []struct {
					name, method, path string
					body               any
				}{
					{"DeleteAgain", http.MethodDelete, messagePath(room.ID, msg.ID), nil},
					{"Edit", http.MethodPatch, messagePath(room.ID, msg.ID), map[string]string{"body": "back"}},
					{"React", http.MethodPut, reactionPath(room.ID, msg.ID, "🎉"), nil},
					{"Unreact", http.MethodDelete, reactionPath(room.ID, msg.ID, "👍"), nil},
				} {
					t.Run(again.name, func(t *testing.T) {
						before := e.MustCounts(t)
						MustStatus(t, alice.Do(t, again.method, again.path, again.body), http.StatusNotFound)
						if after := e.MustCounts(t); after != before {
							t.Fatalf("counts %+v -> %+v", before, after)
						}
					})
				}
			})
		}
		t.Run("OthersMessage", func(t *testing.T) {
			msg := alice.MustPost(t, room.ID, "bob may not delete this")
			before := e.MustCounts(t)
			MustStatus(t, bob.Do(t, http.MethodDelete, messagePath(room.ID, msg.ID), nil), http.StatusForbidden)
			if after := e.MustCounts(t); after != before {
				t.Fatalf("counts %+v -> %+v", before, after)
			}
			if m := MustMessage(t, alice, room.ID, msg.ID); m.Deleted() || m.Body != msg.Body {
				t.Fatalf("message after a refused delete: %+v", m)
			}
		})
		t.Run("UnknownMessage", func(t *testing.T) {
			MustStatus(t, owner.Do(t, http.MethodDelete, messagePath(room.ID, unknownID()), nil), http.StatusNotFound)
		})
	})

	// A repeated client_id answers the message's current state; 409 only
	// when the body differs from the one first posted.
	t.Run("ClientIDRepeat", func(t *testing.T) {
		post := func(body string) *e2e.Response {
			return alice.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/messages", map[string]string{"body": body, "client_id": "k-edit"})
		}
		first := MustDecode[chat.Message](t, post("first words"), http.StatusCreated)
		edited := MustEdit(t, alice, room.ID, first.ID, "second words")
		if got := MustDecode[chat.Message](t, post("first words"), http.StatusOK); !reflect.DeepEqual(got, edited) {
			t.Fatalf("repeat after edit answered %+v, want the edited %+v", got, edited)
		}
		MustStatus(t, post("second words"), http.StatusConflict)
		MustStatus(t, alice.Do(t, http.MethodDelete, messagePath(room.ID, first.ID), nil), http.StatusNoContent)
		tomb := MustDecode[chat.Message](t, post("first words"), http.StatusOK)
		if !tomb.Deleted() || tomb.Body != "" || tomb.ID != first.ID {
			t.Fatalf("repeat after delete answered %+v, want the tombstone", tomb)
		}
		MustStatus(t, post("other words"), http.StatusConflict)
	})

	t.Run("Replies", func(t *testing.T) {
		parent := bob.MustPost(t, room.ID, "a question")
		reply := MustPostWith(t, alice, room.ID, map[string]string{"body": "an answer", "reply_to": parent.ID})
		if reply.ReplyTo != parent.ID {
			t.Fatalf("reply %+v, want reply_to %s", reply, parent.ID)
		}
		if got := MustMessage(t, bob, room.ID, reply.ID); got.ReplyTo != parent.ID {
			t.Fatalf("read reply %+v", got)
		}
		if ev := e.MustLastEvent(t, room.ID); ev.Data["reply_to"] != parent.ID {
			t.Fatalf("message event %+v, want reply_to", ev)
		}
		elsewhere := alice.MustPost(t, other.ID, "in the other room")
		for _, tc := range []struct {
			name    string
			replyTo string
		}{
			{"OtherRoomsMessage", elsewhere.ID},
			{"UnknownMessage", unknownID()},
			{"NotAnID", "not-an-id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				MustStatus(t, alice.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/messages", map[string]string{"body": "x", "reply_to": tc.replyTo}),
					http.StatusUnprocessableEntity)
				if after := e.MustCounts(t); after != before {
					t.Fatalf("counts %+v -> %+v", before, after)
				}
			})
		}
		// A reply to a message deleted later keeps pointing at its tombstone.
		MustStatus(t, bob.Do(t, http.MethodDelete, messagePath(room.ID, parent.ID), nil), http.StatusNoContent)
		if got := MustMessage(t, alice, room.ID, reply.ID); got.ReplyTo != parent.ID || got.Body != "an answer" {
			t.Fatalf("reply after its parent's deletion: %+v", got)
		}
	})
}

// TestDeleteErases: after a delete, the text of the message and of every
// edit of it is nowhere in the database: every text, varchar, json and
// jsonb column of every table is searched; nor in any replay.
func TestDeleteErases(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	alice := e.MustUser(t, "alice")
	room := owner.MustCreateRoom(t, "erase", chat.Private)
	MustAddMember(t, owner, room.ID, alice.Session.User.ID)
	texts := []string{"zebra-original-7f3a", "zebra-edit-one-91c2", "zebra-edit-two-04bd"}
	kept := alice.MustPost(t, room.ID, "zebra-kept-5e61")
	msg := MustPostWith(t, alice, room.ID, map[string]string{"body": texts[0], "client_id": "erase-me"})
	MustEdit(t, alice, room.ID, msg.ID, texts[1])
	MustReact(t, owner, room.ID, msg.ID, "👀")
	// A long edit goes to the streams by reference, not inline.
	long := texts[2] + strings.Repeat("ü", 3980)
	MustEdit(t, alice, room.ID, msg.ID, long)
	reply := MustPostWith(t, owner, room.ID, map[string]string{"body": "replying", "reply_to": msg.ID})

	for _, s := range append(texts, "zebra-kept-5e61") {
		if n := mustFindInDatabase(t, e, s); n == 0 {
			t.Fatalf("%q is not in the database before the delete: the search finds nothing", s)
		}
	}
	MustStatus(t, alice.Do(t, http.MethodDelete, messagePath(room.ID, msg.ID), nil), http.StatusNoContent)
	for _, s := range texts {
		if n := mustFindInDatabase(t, e, s); n != 0 {
			t.Fatalf("%q is still in %d column values after the delete", s, n)
		}
	}
	if n := mustFindInDatabase(t, e, "zebra-kept-5e61"); n == 0 {
		t.Fatalf("the delete erased another message's text")
	}
	if got := MustMessage(t, owner, room.ID, kept.ID); got.Body != kept.Body {
		t.Fatalf("other message after the delete: %+v", got)
	}
	if got := MustMessage(t, owner, room.ID, reply.ID); got.Body != "replying" || got.ReplyTo != msg.ID {
		t.Fatalf("reply after the delete: %+v", got)
	}

	// A replay from the start carries the tombstone in place of the
	// message and of each edit, then the deletion.
	s := owner.OpenStream(t, room.ID, "after=0", nil)
	frames := s.UntilReady(t, 20*time.Second)
	var types []string
	for _, f := range frames {
		for _, text := range texts {
			if strings.Contains(f.Data, text) {
				t.Fatalf("replayed frame %d (%s) carries %q: %s", f.ID, f.Type, text, f.Data)
			}
		}
		if strings.Contains(f.Data, msg.ID) {
			types = append(types, f.Type)
		}
	}
	want := []string{"message", "message.edited", "reaction.added", "message.edited", "message", "message.deleted"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("replayed events about the message: %v, want %v", types, want)
	}
}

// mustFindInDatabase counts the values of every text-like column of every
// table in the test database that contain s.
func mustFindInDatabase(tb testing.TB, e *env, s string) int {
	tb.Helper()
	ctx := context.Background()
	rows, err := e.conn.Query(ctx, `SELECT table_schema, table_name, column_name FROM information_schema.columns
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
		AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'USER-DEFINED', 'ARRAY')`)
	if err != nil {
		tb.Fatalf("list columns: %v", err)
	}
	type column struct{ schema, table, name string }
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.schema, &c.table, &c.name); err != nil {
			tb.Fatalf("list columns: %v", err)
		}
		cols = append(cols, c)
	}
	if rows.Err() != nil {
		tb.Fatalf("list columns: %v", rows.Err())
	}
	if len(cols) < 5 {
		tb.Fatalf("only %d text columns found: %v", len(cols), cols)
	}
	found := 0
	for _, c := range cols {
		var n int
		sql := fmt.Sprintf(`SELECT count(*) FROM %q.%q WHERE strpos(%q::text, $1) > 0`, c.schema, c.table, c.name)
		if err := e.conn.QueryRow(ctx, sql, s).Scan(&n); err != nil {
			tb.Fatalf("search %s.%s.%s: %v", c.schema, c.table, c.name, err)
		}
		found += n
	}
	return found
}

// TestConversationRaces: changes to one message queued behind the room's
// lock in a known order. An edit racing a delete loses to it whichever
// comes first: after both, the edit's text is nowhere and the message is
// a tombstone.
func TestConversationRaces(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	alice := e.MustUser(t, "alice")
	edit := func(roomID, msgID, body string) call {
		return call{alice, http.MethodPatch, messagePath(roomID, msgID), map[string]string{"body": body}}
	}
	del := func(c *e2e.Client, roomID, msgID string) call {
		return call{c, http.MethodDelete, messagePath(roomID, msgID), nil}
	}
	react := func(c *e2e.Client, roomID, msgID string) call {
		return call{c, http.MethodPut, reactionPath(roomID, msgID, "👍"), nil}
	}
	for _, tc := range []struct {
		name  string
		calls func(roomID, msgID, text string) []call
		want  []int
		// events is how many events the calls record.
		events int64
	}{
		{"EditThenDelete", func(r, m, text string) []call { return []call{edit(r, m, text), del(alice, r, m)} },
			[]int{http.StatusOK, http.StatusNoContent}, 2},
		{"DeleteThenEdit", func(r, m, text string) []call { return []call{del(alice, r, m), edit(r, m, text)} },
			[]int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"EditThenOwnerDeletes", func(r, m, text string) []call { return []call{edit(r, m, text), del(owner, r, m)} },
			[]int{http.StatusOK, http.StatusNoContent}, 2},
		{"OwnerDeletesThenEdit", func(r, m, text string) []call { return []call{del(owner, r, m), edit(r, m, text)} },
			[]int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"DeleteTwice", func(r, m, _ string) []call { return []call{del(alice, r, m), del(owner, r, m)} },
			[]int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"DeleteThenReact", func(r, m, _ string) []call { return []call{del(alice, r, m), react(owner, r, m)} },
			[]int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"ReactTwice", func(r, m, _ string) []call { return []call{react(owner, r, m), react(owner, r, m)} },
			[]int{http.StatusOK, http.StatusOK}, 1},
		{"EditTwiceSame", func(r, m, text string) []call { return []call{edit(r, m, text), edit(r, m, text)} },
			[]int{http.StatusOK, http.StatusOK}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := owner.MustCreateRoom(t, tc.name, chat.Public)
			alice.MustJoin(t, room.ID)
			msg := alice.MustPost(t, room.ID, "racing original "+tc.name)
			text := "racing edit " + tc.name
			before := MustGetRoom(t, owner, room.ID)
			e.MustRunQueued(t, room.ID, tc.calls(room.ID, msg.ID, text), tc.want)
			evs := e.MustEvents(t, room.ID)
			if got := int64(len(evs)) - before.LastSeq; got != tc.events {
				t.Fatalf("the calls recorded %d events, want %d", got, tc.events)
			}
			now := MustMessage(t, owner, room.ID, msg.ID)
			if now.Deleted() {
				for _, s := range []string{text, msg.Body} {
					if n := mustFindInDatabase(t, e, s); n != 0 {
						t.Fatalf("%q survives the delete in %d values", s, n)
					}
				}
			}
		})
	}
}

package streams

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// mustDo sends a call and checks its status.
func mustDo(tb testing.TB, c *e2e.Client, method, path string, body any, want int) *e2e.Response {
	tb.Helper()
	resp := c.Do(tb, method, path, body)
	if resp.Status != want {
		tb.Fatalf("%s %s: %d %s, want %d", method, path, resp.Status, resp.Body, want)
	}
	return resp
}

// TestConversationEvents: edits, deletes and reactions made on either of
// two replicas reach live subscribers on both, each once and in seq order,
// and replay on resume (by after= and by Last-Event-ID, on either
// replica) in the same order, with the deleted text erased from the
// replayed message and edits.
func TestConversationEvents(t *testing.T) {
	c := e2e.NewCluster(t)
	a, b := c.MustStart(t), c.MustStart(t)
	alice := e2e.MustRegister(t, a.URL, "alice")
	bob := e2e.MustRegister(t, b.URL, "bob")
	room := alice.MustCreateRoom(t, "conversations", chat.Public)
	bob.MustJoin(t, room.ID)
	start := room.LastSeq + 1 // bob's member.joined

	live := []*e2e.Stream{
		alice.OpenStream(t, room.ID, "", nil),
		alice.As(b.URL).OpenStream(t, room.ID, "", nil),
		bob.OpenStream(t, room.ID, "", nil),
		bob.As(a.URL).OpenStream(t, room.ID, "", nil),
	}
	for _, s := range live {
		s.UntilReady(t, wait)
	}

	const original = "the original words 4c1e"
	edited := "edited words 9b2d, long enough to go by reference " + strings.Repeat("é", 3900)
	msgPath := func(id string) string { return "/v1/rooms/" + room.ID + "/messages/" + id }
	reactPath := func(id, key string) string { return msgPath(id) + "/reactions/" + url.PathEscape(key) }

	// Every change through alternating replicas.
	m1 := alice.MustPost(t, room.ID, original)
	var m2 chat.Message
	mustDo(t, bob, http.MethodPost, "/v1/rooms/"+room.ID+"/messages", map[string]string{"body": "a reply", "reply_to": m1.ID}, http.StatusCreated).JSON(t, &m2)
	mustDo(t, alice.As(b.URL), http.MethodPatch, msgPath(m1.ID), map[string]string{"body": "first edit 77aa"}, http.StatusOK)
	mustDo(t, bob.As(a.URL), http.MethodPut, reactPath(m1.ID, "👍"), nil, http.StatusOK)
	mustDo(t, alice.As(b.URL), http.MethodPut, reactPath(m1.ID, "👍"), nil, http.StatusOK)
	mustDo(t, bob.As(a.URL), http.MethodPut, reactPath(m1.ID, "👍"), nil, http.StatusOK) // a repeat: no event
	mustDo(t, bob, http.MethodDelete, reactPath(m1.ID, "👍"), nil, http.StatusNoContent)
	mustDo(t, alice, http.MethodPatch, msgPath(m1.ID), map[string]string{"body": edited}, http.StatusOK)
	mustDo(t, bob, http.MethodPut, "/v1/rooms/"+room.ID+"/read", map[string]int64{"seq": m2.Seq}, http.StatusOK) // no event
	want := []string{"member.joined", "message", "message", "message.edited", "reaction.added", "reaction.added", "reaction.removed", "message.edited", "message.deleted"}
	// Read every live stream up to the second edit before deleting: an
	// edit too big for a notification is read from the log, and one read
	// after the delete has committed rightly finds the text erased.
	liveFrames := make([][]e2e.Frame, len(live))
	for i, s := range live {
		for len(liveFrames[i]) < len(want)-2 {
			liveFrames[i] = append(liveFrames[i], s.Next(t, wait))
		}
	}
	mustDo(t, alice.As(b.URL), http.MethodDelete, msgPath(m1.ID), nil, http.StatusNoContent)
	// A last event that everyone must see after the others: anything extra
	// or out of order shows before it.
	tail := []int64{alice.MustPost(t, room.ID, "the end").Seq}

	check := func(t *testing.T, frames []e2e.Frame, from int64, replayed bool) {
		t.Helper()
		wantTypes := want[from-start:]
		if len(frames) != len(wantTypes)+len(tail) {
			t.Fatalf("%d frames, want %d: %v", len(frames), len(wantTypes)+len(tail), frames)
		}
		for i, f := range frames[:len(wantTypes)] {
			seq := from + int64(i)
			if f.ID != seq || f.Seq() != seq || f.Type != wantTypes[i] {
				t.Fatalf("frame %d: id %d seq %d type %s, want seq %d type %s", i, f.ID, f.Seq(), f.Type, seq, wantTypes[i])
			}
			mustConversationData(t, f, m1.ID, replayed)
			if replayed && (strings.Contains(f.Data, original) || strings.Contains(f.Data, "first edit 77aa") || strings.Contains(f.Data, "edited words 9b2d")) {
				t.Fatalf("replayed frame %d (%s) carries deleted text: %.200s", f.ID, f.Type, f.Data)
			}
		}
		for i, f := range frames[len(wantTypes):] {
			if f.ID != tail[i] || f.Type != "message" {
				t.Fatalf("frame %+v, want the later message %d", f, tail[i])
			}
		}
	}

	t.Run("Live", func(t *testing.T) {
		for i, s := range live {
			frames := liveFrames[i]
			for len(frames) < len(want)-1+len(tail) {
				frames = append(frames, s.Next(t, wait))
			}
			check(t, frames, start+1, false)
			// Live, the edits carried the text (they were delivered
			// before the delete).
			if !strings.Contains(frames[2].Data, "first edit 77aa") || !strings.Contains(frames[6].Data, "edited words 9b2d") {
				t.Fatalf("stream %d: live edits lack their text", i)
			}
		}
	})

	t.Run("Resume", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			client *e2e.Client
			query  string
			header http.Header
			from   int64
		}{
			{"AfterOnA", alice, fmt.Sprintf("after=%d", start-1), nil, start},
			{"AfterOnB", bob, fmt.Sprintf("after=%d", start-1), nil, start},
			{"LastEventIDOnB", alice.As(b.URL), "", http.Header{"Last-Event-ID": {fmt.Sprint(start + 2)}}, start + 3},
			{"LastEventIDOnA", bob.As(a.URL), "", http.Header{"Last-Event-ID": {fmt.Sprint(start + 5)}}, start + 6},
			{"HeaderWins", bob, "after=0", http.Header{"Last-Event-ID": {fmt.Sprint(start + 7)}}, start + 8},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := tc.client.OpenStream(t, room.ID, tc.query, tc.header)
				check(t, s.UntilReady(t, wait), tc.from, true)
				// Then live, with no duplicate.
				next := alice.MustPost(t, room.ID, "after "+tc.name)
				if f := s.Next(t, wait); f.ID != next.Seq {
					t.Fatalf("first live frame %+v, want %d", f, next.Seq)
				}
				tail = append(tail, next.Seq)
			})
		}
	})
}

// mustConversationData checks a frame's data has the shape of its event
// type and no per-viewer fields; replayed, the message about msgID is a
// tombstone.
func mustConversationData(tb testing.TB, f e2e.Frame, msgID string, replayed bool) {
	tb.Helper()
	var d map[string]any
	if err := json.Unmarshal([]byte(f.Data), &d); err != nil {
		tb.Fatalf("frame %d: %v", f.ID, err)
	}
	if strings.Contains(f.Data, `"me"`) || strings.Contains(f.Data, "last_read_seq") || strings.Contains(f.Data, "unread_count") {
		tb.Fatalf("frame %d carries per-viewer fields: %.300s", f.ID, f.Data)
	}
	msg := d
	switch f.Type {
	case "message.edited":
		msg, _ = d["message"].(map[string]any)
	case "message.deleted", "reaction.added", "reaction.removed":
		if d["message_id"] != msgID || d["message_seq"] == nil {
			tb.Fatalf("frame %d: %v, want message_id %s and message_seq", f.ID, d, msgID)
		}
		if f.Type != "message.deleted" && (d["key"] != "👍" || d["user_id"] == nil || d["count"] == nil) {
			tb.Fatalf("frame %d: %v, want key, user_id and count", f.ID, d)
		}
		return
	case "message":
	default:
		return
	}
	if msg == nil || msg["id"] == nil {
		tb.Fatalf("frame %d (%s): no message in %v", f.ID, f.Type, d)
	}
	if msg["id"] == msgID && replayed && (msg["body"] != "" || msg["deleted_at"] == nil) {
		tb.Fatalf("replayed frame %d (%s): %.300s, want the tombstone", f.ID, f.Type, f.Data)
	}
	if _, ok := msg["reactions"].([]any); !ok {
		tb.Fatalf("frame %d (%s): reactions %v, want an array", f.ID, f.Type, msg["reactions"])
	}
}

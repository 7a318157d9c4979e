// Package userstream tests the user stream (GET /v1/events) end to end:
// its wire format and cursor rules, and resuming across replicas with no
// gap and no duplicate in any room under concurrent posting, joins and
// leaves.
package userstream

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/api"
	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

const wait = 20 * time.Second

// unlimited raises the limits that would otherwise refuse this test's load.
var unlimited = []string{"PARLEY_POST_RATE=0", "PARLEY_STREAMS_PER_USER=0"}

var cursorChars = regexp.MustCompile(`^[A-Za-z0-9_-]{1,512}$`)

// event is what a frame's data says about its room and place.
type event struct {
	RoomID string `json:"room_id"`
	Seq    int64  `json:"seq"`
	// UserID (member.left) or User.ID (member.joined): whom it is about.
	UserID string `json:"user_id"`
	User   struct {
		ID string `json:"id"`
	} `json:"user"`
	Type string `json:"-"`
}

func (e event) subject() string {
	if e.UserID != "" {
		return e.UserID
	}
	return e.User.ID
}

// MustEvent decodes a durable frame of a user stream and checks its id is
// a cursor.
func MustEvent(tb testing.TB, f e2e.Frame) event {
	tb.Helper()
	var e event
	if err := json.Unmarshal([]byte(f.Data), &e); err != nil || e.RoomID == "" || e.Seq == 0 {
		tb.Fatalf("frame %+v: want data with room_id and seq (%v)", f, err)
	}
	if !cursorChars.MatchString(f.RawID) {
		tb.Fatalf("frame id %q is not a cursor of at most 512 [A-Za-z0-9_-]", f.RawID)
	}
	e.Type = f.Type
	return e
}

// readyCursor is the cursor of a ready frame.
func readyCursor(tb testing.TB, f e2e.Frame) string {
	tb.Helper()
	var r chat.UserReady
	if f.Type != "ready" || json.Unmarshal([]byte(f.Data), &r) != nil || !cursorChars.MatchString(r.Cursor) {
		tb.Fatalf("frame %+v: want ready with a cursor", f)
	}
	return r.Cursor
}

func TestUserStream(t *testing.T) {
	c := e2e.NewCluster(t, unlimited...)
	a, b := c.MustStart(t), c.MustStart(t)
	alice := e2e.MustRegister(t, a.URL, "alice")
	bob := e2e.MustRegister(t, b.URL, "bob")
	mine := alice.MustCreateRoom(t, "mine", chat.Public)
	theirs := bob.MustCreateRoom(t, "theirs", chat.Public)
	bob.MustPost(t, theirs.ID, "before alice") // never alice's

	s := alice.OpenUserStream(t, "", nil)
	readyCursor(t, s.Next(t, wait)) // a live start sends ready first
	first := alice.MustPost(t, mine.ID, "one")
	f1 := s.Next(t, wait)
	if e := MustEvent(t, f1); e.RoomID != mine.ID || e.Seq != first.Seq || f1.Type != "message" {
		t.Fatalf("got %+v, want the message in mine", f1)
	}
	// Joining brings the room in from alice's member.joined on; after her
	// member.left its events stop and the stream goes on.
	alice.MustJoin(t, theirs.ID)
	bob.MustPost(t, theirs.ID, "welcome")
	if r := alice.Do(t, http.MethodPost, "/v1/rooms/"+theirs.ID+"/leave", nil); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d", r.Status)
	}
	bob.MustPost(t, theirs.ID, "after alice left")
	last := alice.MustPost(t, mine.ID, "two")
	want := []string{"member.joined " + theirs.ID, "message " + theirs.ID, "member.left " + theirs.ID, "message " + mine.ID}
	var live []e2e.Frame
	for i, w := range want {
		f := s.Next(t, wait)
		e := MustEvent(t, f)
		if got := f.Type + " " + e.RoomID; got != w {
			t.Fatalf("frame %d: %s (seq %d), want %s", i, got, e.Seq, w)
		}
		live = append(live, f)
	}
	if e := MustEvent(t, live[3]); e.Seq != last.Seq {
		t.Fatalf("last frame seq %d, want %d", e.Seq, last.Seq)
	}

	t.Run("ResumeOnOtherReplica", func(t *testing.T) {
		// As users resume: package api's reader sends Last-Event-ID.
		r := e2e.Read(t, alice.As(b.URL).API(t), "", api.StreamOptions{After: f1.RawID})
		replayed := r.UntilReady(t, wait)
		if len(replayed) != len(live) {
			t.Fatalf("replayed %d events, want %d", len(replayed), len(live))
		}
		for i := range live {
			// Cursors are opaque: a replay's need not equal the live one's.
			if string(replayed[i].Data) != live[i].Data || !cursorChars.MatchString(replayed[i].ID) || replayed[i].Payload == nil {
				t.Fatalf("replayed event %d: %s (id %s), want %s with a cursor", i, replayed[i].Data, replayed[i].ID, live[i].Data)
			}
		}
		if ready := r.Stream.LastID(); !cursorChars.MatchString(ready) {
			t.Fatalf("reader's position %q after ready, want a cursor", ready)
		}
	})
	t.Run("ResumeAtTheEnd", func(t *testing.T) {
		r := e2e.Read(t, alice.API(t), "", api.StreamOptions{After: live[3].RawID})
		if replayed := r.UntilReady(t, wait); len(replayed) != 0 {
			t.Fatalf("replayed %d events from the last cursor", len(replayed))
		}
		// And it is live.
		m := alice.MustPost(t, mine.ID, "three")
		if got, ok := r.Next(t, wait).Payload.(*api.Message); !ok || got.Seq != m.Seq || got.RoomId != mine.ID {
			t.Fatalf("live event %+v, want message %d", got, m.Seq)
		}
	})
	t.Run("HeaderWins", func(t *testing.T) {
		r := alice.OpenUserStream(t, "after=not-a-cursor", http.Header{"Last-Event-ID": {live[2].RawID}})
		if replayed := r.UntilReady(t, wait); len(replayed) < 1 || replayed[0].Data != live[3].Data {
			t.Fatalf("replayed %+v, want what followed the header's cursor", replayed)
		}
	})

	// Refused cursors: 422 before the stream starts.
	raw, _ := base64.RawURLEncoding.DecodeString(f1.RawID)
	raw[1] ^= 1
	other := e2e.NewCluster(t, unlimited...)
	foreign := e2e.MustRegister(t, other.MustStart(t).URL, "alice")
	fs := foreign.OpenUserStream(t, "", nil)
	fs.UntilReady(t, wait)
	foreign.MustCreateRoom(t, "elsewhere", chat.Public)
	foreignCursor := fs.Next(t, wait).RawID
	tests := []struct{ name, query string }{
		{"Malformed", "after=not*a*cursor"},
		{"NotACursor", "after=AAAAAAAAAAAAAAAAAAAAAAAA"},
		{"Seq", "after=42"},
		{"Tampered", "after=" + base64.RawURLEncoding.EncodeToString(raw)},
		{"TooLong", "after=" + strings.Repeat("A", 513)},
		{"OtherDeployment", "after=" + foreignCursor},
	}
	for _, tt := range tests {
		t.Run("Refused"+tt.name, func(t *testing.T) {
			alice.Do(t, http.MethodGet, "/v1/events?"+tt.query, nil).MustProblem(t, http.StatusUnprocessableEntity)
		})
	}
	t.Run("RefusedHeader", func(t *testing.T) {
		req := alice.StreamRequest(t.Context(), "", "after="+f1.RawID)
		req.Header.Set("Last-Event-ID", "bad-cursor")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422: the header wins", resp.StatusCode)
		}
	})
}

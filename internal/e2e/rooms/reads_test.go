package rooms

import (
	"net/http"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// MustMarkRead moves c's marker and returns the read state.
func MustMarkRead(tb testing.TB, c *e2e.Client, roomID string, seq int64) chat.ReadState {
	tb.Helper()
	return MustDecode[chat.ReadState](tb, c.Do(tb, http.MethodPut, "/v1/rooms/"+roomID+"/read", map[string]int64{"seq": seq}), http.StatusOK)
}

type unread struct {
	UnreadCount int64            `json:"unread_count"`
	Rooms       []chat.ReadState `json:"rooms"`
}

// MustUnread reads c's unread summary.
func MustUnread(tb testing.TB, c *e2e.Client) unread {
	tb.Helper()
	u := MustDecode[unread](tb, c.Do(tb, http.MethodGet, "/v1/me/unread", nil), http.StatusOK)
	if u.Rooms == nil {
		tb.Fatalf("unread: rooms is null, want an array")
	}
	return u
}

// mustReadState is c's read state in a room as the room, the joined list,
// the public list and the member list show it; they must agree.
func mustReadState(tb testing.TB, c *e2e.Client, roomID string) chat.ReadState {
	tb.Helper()
	room := MustGetRoom(tb, c, roomID)
	if room.LastReadSeq == nil || room.UnreadCount == nil {
		tb.Fatalf("room %+v seen by a member lacks the read state", room)
	}
	rs := chat.ReadState{RoomID: roomID, LastReadSeq: *room.LastReadSeq, UnreadCount: *room.UnreadCount}
	for _, scope := range []string{"joined", "public"} {
		found := false
		for _, r := range MustListRooms(tb, c, q("scope", scope, "limit", "100")).Rooms {
			if r.ID != roomID {
				continue
			}
			found = true
			if r.LastReadSeq == nil || *r.LastReadSeq != rs.LastReadSeq || r.UnreadCount == nil || *r.UnreadCount != rs.UnreadCount {
				tb.Fatalf("%s list shows %+v, the room %+v", scope, r, rs)
			}
		}
		if !found && (scope == "joined" || room.Visibility == chat.Public) {
			tb.Fatalf("room not in the %s list", scope)
		}
	}
	for _, m := range MustMembers(tb, c, roomID) {
		if m.User.ID == c.Session.User.ID && m.LastReadSeq != rs.LastReadSeq {
			tb.Fatalf("member list shows last_read_seq %d, the room %d", m.LastReadSeq, rs.LastReadSeq)
		}
	}
	return rs
}

// TestReadState: markers start at the member's own member.joined, move
// forward only, move with the member's own posts, and unread counts leave
// out the member's own messages and deleted ones, everywhere a member sees
// the room.
func TestReadState(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	alice := e.MustUser(t, "alice")
	outsider := e.MustUser(t, "outsider")
	room := owner.MustCreateRoom(t, "reads", chat.Public)
	if room.LastReadSeq == nil || *room.LastReadSeq != 1 || room.UnreadCount == nil || *room.UnreadCount != 0 {
		t.Fatalf("created room %+v, want last_read_seq 1, unread 0", room)
	}
	var early []chat.Message
	for range 3 {
		early = append(early, owner.MustPost(t, room.ID, "before alice"))
	}
	if got := mustReadState(t, owner, room.ID); got.LastReadSeq != early[2].Seq || got.UnreadCount != 0 {
		t.Fatalf("owner after posting: %+v, want the marker on their last post", got)
	}
	member := MustDecode[chat.Member](t, alice.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/join", nil), http.StatusOK)
	joinedSeq := early[2].Seq + 1
	if member.LastReadSeq != joinedSeq {
		t.Fatalf("join answered %+v, want last_read_seq %d (the member.joined)", member, joinedSeq)
	}
	if got := mustReadState(t, alice, room.ID); got != (chat.ReadState{RoomID: room.ID, LastReadSeq: joinedSeq, UnreadCount: 0}) {
		t.Fatalf("new member: %+v", got)
	}
	var later []chat.Message
	for range 4 {
		later = append(later, owner.MustPost(t, room.ID, "for alice"))
	}
	if got := mustReadState(t, alice, room.ID); got.UnreadCount != 4 || got.LastReadSeq != joinedSeq {
		t.Fatalf("after 4 posts: %+v, want 4 unread", got)
	}
	if u := MustUnread(t, alice); u.UnreadCount != 4 || len(u.Rooms) != 1 || u.Rooms[0] != (chat.ReadState{RoomID: room.ID, LastReadSeq: joinedSeq, UnreadCount: 4}) {
		t.Fatalf("unread summary %+v", u)
	}

	t.Run("Forward", func(t *testing.T) {
		rs := MustMarkRead(t, alice, room.ID, later[1].Seq)
		if rs != (chat.ReadState{RoomID: room.ID, LastReadSeq: later[1].Seq, UnreadCount: 2}) {
			t.Fatalf("mark read answered %+v", rs)
		}
		if got := mustReadState(t, alice, room.ID); got != rs {
			t.Fatalf("read state %+v, want %+v", got, rs)
		}
		// Read receipts: the others see how far alice has read.
		for _, m := range MustMembers(t, owner, room.ID) {
			if m.User.ID == alice.Session.User.ID && m.LastReadSeq != rs.LastReadSeq {
				t.Fatalf("owner sees alice's marker at %d, want %d", m.LastReadSeq, rs.LastReadSeq)
			}
		}
	})
	t.Run("UnreadNeedsAToken", func(t *testing.T) {
		MustStatus(t, e.Anonymous().Do(t, http.MethodGet, "/v1/me/unread", nil), http.StatusUnauthorized)
	})
	t.Run("BackwardsIsUnchanged", func(t *testing.T) {
		before := e.MustCounts(t)
		for _, seq := range []int64{later[0].Seq, 0, joinedSeq} {
			if rs := MustMarkRead(t, alice, room.ID, seq); rs.LastReadSeq != later[1].Seq || rs.UnreadCount != 2 {
				t.Fatalf("mark read %d answered %+v, want the marker unchanged", seq, rs)
			}
		}
		if after := e.MustCounts(t); after != before {
			t.Fatalf("counts %+v -> %+v", before, after)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		last := MustGetRoom(t, alice, room.ID).LastSeq
		private := owner.MustCreateRoom(t, "private", chat.Private)
		for _, tc := range []struct {
			name   string
			c      *e2e.Client
			roomID string
			body   any
			want   int
		}{
			{"BeyondLastSeq", alice, room.ID, map[string]int64{"seq": last + 1}, http.StatusUnprocessableEntity},
			{"Negative", alice, room.ID, map[string]int64{"seq": -1}, http.StatusUnprocessableEntity},
			{"NotANumber", alice, room.ID, map[string]string{"seq": "7"}, http.StatusUnprocessableEntity},
			{"NoSeq", alice, room.ID, map[string]string{}, http.StatusUnprocessableEntity},
			{"NonMemberPublic", outsider, room.ID, map[string]int64{"seq": 1}, http.StatusForbidden},
			{"NonMemberPrivate", outsider, private.ID, map[string]int64{"seq": 1}, http.StatusNotFound},
			{"UnknownRoom", alice, unknownID(), map[string]int64{"seq": 1}, http.StatusNotFound},
			{"Anonymous", e.Anonymous(), room.ID, map[string]int64{"seq": 1}, http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				MustStatus(t, tc.c.Do(t, http.MethodPut, "/v1/rooms/"+tc.roomID+"/read", tc.body), tc.want)
				if got := mustReadState(t, alice, room.ID); got.LastReadSeq != later[1].Seq {
					t.Fatalf("a refused mark moved the marker: %+v", got)
				}
			})
		}
	})
	t.Run("DeletedAfterMarkerAreNotUnread", func(t *testing.T) {
		MustStatus(t, owner.Do(t, http.MethodDelete, messagePath(room.ID, later[3].ID), nil), http.StatusNoContent)
		// Deleted before the marker: the count is unchanged.
		MustStatus(t, owner.Do(t, http.MethodDelete, messagePath(room.ID, later[0].ID), nil), http.StatusNoContent)
		if got := mustReadState(t, alice, room.ID); got.UnreadCount != 1 {
			t.Fatalf("after deleting one unread and one read message: %+v, want 1 unread", got)
		}
	})
	t.Run("OtherEventsAreNotUnread", func(t *testing.T) {
		before := mustReadState(t, alice, room.ID)
		MustReact(t, owner, room.ID, later[2].ID, "👍")
		MustEdit(t, owner, room.ID, later[2].ID, "edited for alice")
		MustStatus(t, owner.Do(t, http.MethodPatch, "/v1/rooms/"+room.ID, map[string]string{"topic": "new"}), http.StatusOK)
		outsider.MustJoin(t, room.ID)
		if got := mustReadState(t, alice, room.ID); got != before {
			t.Fatalf("non-message events changed the unread count: %+v -> %+v", before, got)
		}
	})
	t.Run("OwnPostsAreRead", func(t *testing.T) {
		mine := alice.MustPost(t, room.ID, "alice speaks")
		if got := mustReadState(t, alice, room.ID); got != (chat.ReadState{RoomID: room.ID, LastReadSeq: mine.Seq, UnreadCount: 0}) {
			t.Fatalf("after posting: %+v, want the marker on the post and nothing unread", got)
		}
		if u := MustUnread(t, alice); u.UnreadCount != 0 || len(u.Rooms) != 0 {
			t.Fatalf("unread summary %+v, want none", u)
		}
		// Others see it as unread.
		if got := mustReadState(t, owner, room.ID); got.UnreadCount != 1 {
			t.Fatalf("owner: %+v, want alice's post unread", got)
		}
	})
	t.Run("MarkAtLastSeq", func(t *testing.T) {
		last := MustGetRoom(t, owner, room.ID).LastSeq
		if rs := MustMarkRead(t, owner, room.ID, last); rs.LastReadSeq != last || rs.UnreadCount != 0 {
			t.Fatalf("mark at the last seq: %+v", rs)
		}
	})
	t.Run("ManyRooms", func(t *testing.T) {
		bob := e.MustUser(t, "bob")
		var rooms []chat.Room
		for i := range 3 {
			r := owner.MustCreateRoom(t, "many", chat.Public)
			bob.MustJoin(t, r.ID)
			for range i + 1 {
				owner.MustPost(t, r.ID, "x")
			}
			rooms = append(rooms, r)
		}
		u := MustUnread(t, bob)
		if u.UnreadCount != 6 || len(u.Rooms) != 3 {
			t.Fatalf("unread summary %+v, want 6 over 3 rooms", u)
		}
		// Newest room first.
		for i, rs := range u.Rooms {
			if rs.RoomID != rooms[2-i].ID || rs.UnreadCount != int64(3-i) {
				t.Fatalf("unread room %d: %+v", i, rs)
			}
		}
		// Rejoining starts again at the new member.joined.
		MustStatus(t, bob.Do(t, http.MethodPost, "/v1/rooms/"+rooms[2].ID+"/leave", nil), http.StatusNoContent)
		owner.MustPost(t, rooms[2].ID, "while bob was away")
		bob.MustJoin(t, rooms[2].ID)
		if got := mustReadState(t, bob, rooms[2].ID); got.UnreadCount != 0 || got.LastReadSeq != MustGetRoom(t, bob, rooms[2].ID).LastSeq {
			t.Fatalf("after rejoining: %+v", got)
		}
	})
	t.Run("NonMembersSeeNoReadState", func(t *testing.T) {
		other := owner.MustCreateRoom(t, "not joined", chat.Public)
		if r := MustGetRoom(t, alice, other.ID); r.LastReadSeq != nil || r.UnreadCount != nil {
			t.Fatalf("non-member sees %+v", r)
		}
		for _, r := range MustListRooms(t, alice, q("scope", "public", "limit", "100")).Rooms {
			if r.ID == other.ID && (r.LastReadSeq != nil || r.UnreadCount != nil) {
				t.Fatalf("public list shows a non-member %+v", r)
			}
		}
		// Stream data (room.updated) carries no per-viewer fields.
		MustStatus(t, owner.Do(t, http.MethodPatch, "/v1/rooms/"+other.ID, map[string]string{"topic": "t"}), http.StatusOK)
		ev := e.MustLastEvent(t, other.ID)
		if _, ok := ev.Data["last_read_seq"]; ok || ev.Data["unread_count"] != nil {
			t.Fatalf("room.updated carries read state: %+v", ev.Data)
		}
	})
}

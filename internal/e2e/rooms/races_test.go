package rooms

import (
	"net/http"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// TestRaces: changes to one room that queue up for its lock are decided on
// the room as the change before them left it. The test holds the room's
// row lock itself, queues the calls behind it in order, then lets them go:
// each must see what the one before it committed (a second join is a
// repeat, a post after a leave is refused).
func TestRaces(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	member := e.MustUser(t, "member")
	outsider := e.MustUser(t, "outsider")
	memberID := member.Session.User.ID

	post := func(c *e2e.Client, roomID string) call {
		return call{c, http.MethodPost, "/v1/rooms/" + roomID + "/messages", map[string]string{"body": "racing"}}
	}
	join := func(c *e2e.Client, roomID string) call {
		return call{c, http.MethodPost, "/v1/rooms/" + roomID + "/join", nil}
	}
	leave := func(c *e2e.Client, roomID string) call {
		return call{c, http.MethodPost, "/v1/rooms/" + roomID + "/leave", nil}
	}
	add := func(roomID, userID string) call {
		return call{owner, http.MethodPut, "/v1/rooms/" + roomID + "/members/" + userID, nil}
	}
	remove := func(roomID, userID string) call {
		return call{owner, http.MethodDelete, "/v1/rooms/" + roomID + "/members/" + userID, nil}
	}
	for _, tc := range []struct {
		name   string
		vis    chat.Visibility
		joined bool // member is in the room before the race
		calls  func(roomID string) []call
		want   []int
		// events is how many events the calls record.
		events int64
	}{
		{"JoinTwice", chat.Public, false, func(id string) []call { return []call{join(member, id), join(member, id)} },
			[]int{http.StatusOK, http.StatusOK}, 1},
		{"JoinThenLeave", chat.Public, false, func(id string) []call { return []call{join(outsider, id), leave(outsider, id)} },
			[]int{http.StatusOK, http.StatusNoContent}, 2},
		{"JoinThenPost", chat.Public, false, func(id string) []call { return []call{join(outsider, id), post(outsider, id)} },
			[]int{http.StatusOK, http.StatusCreated}, 2},
		{"LeaveTwice", chat.Public, true, func(id string) []call { return []call{leave(member, id), leave(member, id)} },
			[]int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"LeaveThenPost", chat.Public, true, func(id string) []call { return []call{leave(member, id), post(member, id)} },
			[]int{http.StatusNoContent, http.StatusForbidden}, 1},
		{"LeaveThenRejoin", chat.Public, true, func(id string) []call { return []call{leave(member, id), join(member, id)} },
			[]int{http.StatusNoContent, http.StatusOK}, 2},
		{"AddTwice", chat.Private, false, func(id string) []call { return []call{add(id, memberID), add(id, memberID)} },
			[]int{http.StatusOK, http.StatusOK}, 1},
		{"AddThenPost", chat.Private, false, func(id string) []call { return []call{add(id, memberID), post(member, id)} },
			[]int{http.StatusOK, http.StatusCreated}, 2},
		{"RemoveTwice", chat.Private, true, func(id string) []call { return []call{remove(id, memberID), remove(id, memberID)} },
			[]int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"RemoveThenPost", chat.Private, true, func(id string) []call { return []call{remove(id, memberID), post(member, id)} },
			[]int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"RemoveThenJoin", chat.Private, true, func(id string) []call { return []call{remove(id, memberID), join(member, id)} },
			[]int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"DeleteThenPost", chat.Public, true, func(id string) []call {
			return []call{{owner, http.MethodDelete, "/v1/rooms/" + id, nil}, post(member, id)}
		}, []int{http.StatusNoContent, http.StatusNotFound}, 1},
		{"DeleteThenJoin", chat.Public, false, func(id string) []call {
			return []call{{owner, http.MethodDelete, "/v1/rooms/" + id, nil}, join(outsider, id)}
		}, []int{http.StatusNoContent, http.StatusNotFound}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := owner.MustCreateRoom(t, tc.name, tc.vis)
			if tc.joined {
				MustAddMember(t, owner, room.ID, memberID)
			}
			before := MustGetRoom(t, owner, room.ID)
			e.MustRunQueued(t, room.ID, tc.calls(room.ID), tc.want)
			evs := e.MustEvents(t, room.ID)
			if got := int64(len(evs)) - before.LastSeq; got != tc.events {
				t.Fatalf("the calls recorded %d events, want %d: %+v", got, tc.events, evs[before.LastSeq:])
			}
		})
	}
}

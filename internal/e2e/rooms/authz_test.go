package rooms

import (
	"net/http"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// The callers of the authorization matrix, in the order of its columns.
const (
	anonymous = iota
	nonMember
	member
	owner
	nCallers
)

var callerNames = [nCallers]string{"Anonymous", "NonMember", "Member", "Owner"}

// matrixRoom is a room set up for one cell of the matrix: owned by owner,
// with member and target as members, and newcomer not in it; MemberMsg is
// a message by member (reacted to by member with 👍), TargetMsg one by
// target.
type matrixRoom struct {
	ID                   string
	TargetID, Newcomer   string
	MemberMsg, TargetMsg string
}

// TestAuthorizationMatrix: anonymous, non-member, member and owner against
// every room operation, in a public and a private room, with the exact
// status each time. Operations that change state get a fresh room per
// cell; a refused call must leave the room's log as it was.
func TestAuthorizationMatrix(t *testing.T) {
	e := MustEnv(t)
	var callers [nCallers]*e2e.Client
	callers[anonymous] = e.Anonymous()
	callers[nonMember] = e.MustUser(t, "outsider")
	callers[member] = e.MustUser(t, "member")
	callers[owner] = e.MustUser(t, "owner")
	target := e.MustUser(t, "target")
	newcomer := e.MustUser(t, "newcomer")

	mustRoom := func(t *testing.T, vis chat.Visibility) matrixRoom {
		t.Helper()
		room := callers[owner].MustCreateRoom(t, "matrix", vis)
		MustAddMember(t, callers[owner], room.ID, callers[member].Session.User.ID)
		MustAddMember(t, callers[owner], room.ID, target.Session.User.ID)
		memberMsg := callers[member].MustPost(t, room.ID, "by member")
		MustReact(t, callers[member], room.ID, memberMsg.ID, "👍")
		return matrixRoom{ID: room.ID, TargetID: target.Session.User.ID, Newcomer: newcomer.Session.User.ID,
			MemberMsg: memberMsg.ID, TargetMsg: target.MustPost(t, room.ID, "by target").ID}
	}
	shared := map[chat.Visibility]matrixRoom{chat.Public: mustRoom(t, chat.Public), chat.Private: mustRoom(t, chat.Private)}

	const (
		ok, created, noContent = http.StatusOK, http.StatusCreated, http.StatusNoContent
		unauth, forbidden      = http.StatusUnauthorized, http.StatusForbidden
		notFound, conflict     = http.StatusNotFound, http.StatusConflict
	)
	for _, tc := range []struct {
		name string
		// changes says the operation may change the room: each cell
		// gets a fresh one.
		changes bool
		do      func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response
		// public and private are the statuses per caller.
		public, private [nCallers]int
	}{
		{
			name: "GetRoom",
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodGet, "/v1/rooms/"+r.ID, nil)
			},
			public:  [nCallers]int{unauth, ok, ok, ok},
			private: [nCallers]int{unauth, notFound, ok, ok},
		},
		{
			name: "UpdateRoom", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPatch, "/v1/rooms/"+r.ID, map[string]string{"topic": "changed"})
			},
			public:  [nCallers]int{unauth, forbidden, forbidden, ok},
			private: [nCallers]int{unauth, notFound, forbidden, ok},
		},
		{
			name: "DeleteRoom", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodDelete, "/v1/rooms/"+r.ID, nil)
			},
			public:  [nCallers]int{unauth, forbidden, forbidden, noContent},
			private: [nCallers]int{unauth, notFound, forbidden, noContent},
		},
		{
			name: "JoinRoom", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPost, "/v1/rooms/"+r.ID+"/join", nil)
			},
			public:  [nCallers]int{unauth, ok, ok, ok},
			private: [nCallers]int{unauth, notFound, ok, ok},
		},
		{
			name: "LeaveRoom", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPost, "/v1/rooms/"+r.ID+"/leave", nil)
			},
			public:  [nCallers]int{unauth, notFound, noContent, conflict},
			private: [nCallers]int{unauth, notFound, noContent, conflict},
		},
		{
			name: "ListMembers",
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodGet, "/v1/rooms/"+r.ID+"/members", nil)
			},
			public:  [nCallers]int{unauth, forbidden, ok, ok},
			private: [nCallers]int{unauth, notFound, ok, ok},
		},
		{
			name: "AddMember", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPut, "/v1/rooms/"+r.ID+"/members/"+r.Newcomer, nil)
			},
			public:  [nCallers]int{unauth, forbidden, forbidden, ok},
			private: [nCallers]int{unauth, notFound, forbidden, ok},
		},
		{
			name: "RemoveMember", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodDelete, "/v1/rooms/"+r.ID+"/members/"+r.TargetID, nil)
			},
			public:  [nCallers]int{unauth, forbidden, forbidden, noContent},
			private: [nCallers]int{unauth, notFound, forbidden, noContent},
		},
		{
			name: "PostMessage", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPost, "/v1/rooms/"+r.ID+"/messages", map[string]string{"body": "hello"})
			},
			public:  [nCallers]int{unauth, forbidden, created, created},
			private: [nCallers]int{unauth, notFound, created, created},
		},
		{
			name: "ListMessages",
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodGet, "/v1/rooms/"+r.ID+"/messages", nil)
			},
			public:  [nCallers]int{unauth, forbidden, ok, ok},
			private: [nCallers]int{unauth, notFound, ok, ok},
		},
		{
			name: "GetMessage",
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodGet, messagePath(r.ID, r.TargetMsg), nil)
			},
			public:  [nCallers]int{unauth, forbidden, ok, ok},
			private: [nCallers]int{unauth, notFound, ok, ok},
		},
		{
			// Member wrote the message: only they may edit it.
			name: "EditOwnMessage", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPatch, messagePath(r.ID, r.MemberMsg), map[string]string{"body": "edited"})
			},
			public:  [nCallers]int{unauth, forbidden, ok, forbidden},
			private: [nCallers]int{unauth, notFound, ok, forbidden},
		},
		{
			name: "EditOthersMessage", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPatch, messagePath(r.ID, r.TargetMsg), map[string]string{"body": "edited"})
			},
			public:  [nCallers]int{unauth, forbidden, forbidden, forbidden},
			private: [nCallers]int{unauth, notFound, forbidden, forbidden},
		},
		{
			name: "DeleteOwnMessage", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodDelete, messagePath(r.ID, r.MemberMsg), nil)
			},
			public:  [nCallers]int{unauth, forbidden, noContent, noContent},
			private: [nCallers]int{unauth, notFound, noContent, noContent},
		},
		{
			name: "DeleteOthersMessage", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodDelete, messagePath(r.ID, r.TargetMsg), nil)
			},
			public:  [nCallers]int{unauth, forbidden, forbidden, noContent},
			private: [nCallers]int{unauth, notFound, forbidden, noContent},
		},
		{
			name: "AddReaction", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPut, reactionPath(r.ID, r.TargetMsg, "🎉"), nil)
			},
			public:  [nCallers]int{unauth, forbidden, ok, ok},
			private: [nCallers]int{unauth, notFound, ok, ok},
		},
		{
			name: "RemoveReaction", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodDelete, reactionPath(r.ID, r.MemberMsg, "👍"), nil)
			},
			public:  [nCallers]int{unauth, forbidden, noContent, noContent},
			private: [nCallers]int{unauth, notFound, noContent, noContent},
		},
		{
			name: "MarkRead", changes: true,
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return c.Do(t, http.MethodPut, "/v1/rooms/"+r.ID+"/read", map[string]int64{"seq": 2})
			},
			public:  [nCallers]int{unauth, forbidden, ok, ok},
			private: [nCallers]int{unauth, notFound, ok, ok},
		},
		{
			name: "StreamRoomEvents",
			do: func(t *testing.T, c *e2e.Client, r matrixRoom) *e2e.Response {
				return MustStreamResponse(t, c, r.ID)
			},
			public:  [nCallers]int{unauth, forbidden, ok, ok},
			private: [nCallers]int{unauth, notFound, ok, ok},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, vis := range []chat.Visibility{chat.Public, chat.Private} {
				want := tc.public
				if vis == chat.Private {
					want = tc.private
				}
				for who, c := range callers {
					t.Run(string(vis)+"/"+callerNames[who], func(t *testing.T) {
						room := shared[vis]
						if tc.changes {
							room = mustRoom(t, vis)
						}
						before := e.MustCounts(t)
						MustStatus(t, tc.do(t, c, room), want[who])
						if want[who] >= 400 {
							if after := e.MustCounts(t); after != before {
								t.Fatalf("a refused call changed the database: %+v -> %+v", before, after)
							}
						}
					})
				}
			}
		})
	}
}

package rooms

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// TestRoomLists: the joined and public scopes, newest first, paged with
// next_cursor until it is absent, and the 422s for bad parameters. It has
// its own database so it knows every room there is.
func TestRoomLists(t *testing.T) {
	e := MustEnv(t)
	alice := e.MustUser(t, "alice")
	bob := e.MustUser(t, "bob")
	carol := e.MustUser(t, "carol")

	// Rooms in creation order; the lists are newest first.
	var created []chat.Room
	create := func(c *e2e.Client, name string, vis chat.Visibility) chat.Room {
		r := c.MustCreateRoom(t, name, vis)
		created = append(created, r)
		return r
	}
	create(alice, "a-pub-1", chat.Public)
	create(alice, "a-priv-1", chat.Private)
	bobPub := create(bob, "b-pub-1", chat.Public)
	bobPriv := create(bob, "b-priv-1", chat.Private)
	create(alice, "a-pub-2", chat.Public)
	create(bob, "b-pub-2", chat.Public)
	create(alice, "a-priv-2", chat.Private)
	bobPriv2 := create(bob, "b-priv-2", chat.Private)
	create(alice, "a-pub-3", chat.Public)
	deleted := create(alice, "a-pub-deleted", chat.Public)
	create(bob, "b-pub-3", chat.Public)
	left := create(bob, "b-pub-left", chat.Public)
	alice.MustJoin(t, bobPub.ID)
	MustAddMember(t, bob, bobPriv.ID, alice.Session.User.ID)
	alice.MustJoin(t, left.ID)
	MustStatus(t, alice.Do(t, http.MethodPost, "/v1/rooms/"+left.ID+"/leave", nil), http.StatusNoContent)
	MustStatus(t, alice.Do(t, http.MethodDelete, "/v1/rooms/"+deleted.ID, nil), http.StatusNoContent)

	// want lists the ids of the rooms keep accepts, newest first.
	want := func(keep func(r chat.Room) bool) []string {
		var out []string
		for _, r := range slices.Backward(created) {
			if r.ID != deleted.ID && keep(r) {
				out = append(out, r.ID)
			}
		}
		return out
	}
	owns := func(c *e2e.Client) func(chat.Room) bool {
		return func(r chat.Room) bool { return r.OwnerID == c.Session.User.ID }
	}
	public := func(r chat.Room) bool { return r.Visibility == chat.Public }
	aliceJoined := want(func(r chat.Room) bool { return owns(alice)(r) || r.ID == bobPub.ID || r.ID == bobPriv.ID })
	bobJoined := want(owns(bob))
	allPublic := want(public)
	if len(allPublic) != 7 || len(aliceJoined) != 7 || len(bobJoined) != 6 {
		t.Fatalf("fixture: %d public, %d joined by alice, %d by bob", len(allPublic), len(aliceJoined), len(bobJoined))
	}

	for _, tc := range []struct {
		name   string
		caller *e2e.Client
		query  string
		want   []string
	}{
		{"DefaultIsJoined", alice, "", aliceJoined},
		{"Joined", alice, "scope=joined", aliceJoined},
		{"JoinedByOther", bob, "scope=joined", bobJoined},
		{"JoinedNone", carol, "scope=joined", []string{}},
		{"Public", alice, "scope=public", allPublic},
		{"PublicByNonMember", carol, "scope=public", allPublic},
		{"ExactLimit", alice, "scope=public&limit=7", allPublic},
		{"MaxLimit", bob, "scope=public&limit=100", allPublic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.caller.Do(t, http.MethodGet, "/v1/rooms?"+tc.query, nil)
			l := MustDecode[roomList](t, resp, http.StatusOK)
			if got := ids(l.Rooms); !slices.Equal(got, tc.want) || l.Rooms == nil {
				t.Fatalf("rooms %v, want %v", got, tc.want)
			}
			if l.NextCursor != nil || strings.Contains(string(resp.Body), "next_cursor") {
				t.Fatalf("next_cursor present on the only page: %s", resp.Body)
			}
			for _, r := range l.Rooms {
				if r.ID == bobPriv2.ID && tc.caller != bob {
					t.Fatalf("private room leaked into %s", tc.query)
				}
			}
		})
	}

	t.Run("Paging", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			caller *e2e.Client
			scope  string
			limit  int
			want   []string
		}{
			{"Public1", carol, "public", 1, allPublic},
			{"Public2", carol, "public", 2, allPublic},
			{"Public3", alice, "public", 3, allPublic},
			{"Public6", alice, "public", 6, allPublic},
			{"Joined2", alice, "joined", 2, aliceJoined},
			{"Joined3", bob, "joined", 3, bobJoined},
			{"Joined5", alice, "joined", 5, aliceJoined},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []string
				cursor := ""
				for pages := 1; ; pages++ {
					query := q("scope", tc.scope, "limit", fmt.Sprint(tc.limit))
					if cursor != "" {
						query.Set("cursor", cursor)
					}
					l := MustListRooms(t, tc.caller, query)
					got = append(got, ids(l.Rooms)...)
					if l.NextCursor == nil {
						if len(l.Rooms) == 0 || len(l.Rooms) > tc.limit {
							t.Fatalf("last page holds %d rooms, limit %d", len(l.Rooms), tc.limit)
						}
						break
					}
					if len(l.Rooms) != tc.limit {
						t.Fatalf("page %d holds %d rooms, want %d", pages, len(l.Rooms), tc.limit)
					}
					if err := jsonString(*l.NextCursor, &cursor); err != nil || cursor == "" {
						t.Fatalf("next_cursor %s is not a non-empty string", *l.NextCursor)
					}
					if pages > len(tc.want) {
						t.Fatalf("more pages than rooms")
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("paged through %v, want %v", got, tc.want)
				}
			})
		}
	})

	t.Run("BadParameters", func(t *testing.T) {
		first := MustListRooms(t, alice, q("scope", "public", "limit", "1"))
		if first.NextCursor == nil {
			t.Fatal("fixture: no next_cursor")
		}
		var cursor string
		if err := jsonString(*first.NextCursor, &cursor); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, query string }{
			{"Limit0", "limit=0"},
			{"Limit101", "limit=101"},
			{"LimitNegative", "limit=-1"},
			{"LimitNotANumber", "limit=ten"},
			{"Scope", "scope=everything"},
			{"CursorGarbage", "cursor=nope"},
			{"CursorNotBase64", "cursor=%21%21%21"},
			{"CursorWrongContent", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("12,not-a-uuid"))},
			{"CursorNegativeTime", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("-1,"+alice.Session.User.ID))},
			{"CursorTooLong", "cursor=" + strings.Repeat("A", 300)},
			{"CursorTampered", "cursor=" + cursor + "x"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				MustStatus(t, alice.Do(t, http.MethodGet, "/v1/rooms?"+tc.query, nil), http.StatusUnprocessableEntity)
			})
		}
		t.Run("Anonymous", func(t *testing.T) {
			MustStatus(t, e.Anonymous().Do(t, http.MethodGet, "/v1/rooms", nil), http.StatusUnauthorized)
		})
	})
}

package rooms

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// TestRooms: create, get, update and delete rooms, and every membership
// call, with each error the contract lists. Every change is checked in the
// event log: the right event, the next seq, nothing when nothing changed.
func TestRooms(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	member := e.MustUser(t, "member")
	outsider := e.MustUser(t, "outsider")
	ownerID, memberID, outsiderID := owner.Session.User.ID, member.Session.User.ID, outsider.Session.User.ID

	t.Run("Create", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			body map[string]string
		}{
			{"Public", map[string]string{"name": "general", "visibility": "public"}},
			{"PrivateWithTopic", map[string]string{"name": "secret", "topic": "plans", "visibility": "private"}},
			// Limits count code points, not bytes.
			{"LongestNameAndTopic", map[string]string{"name": strings.Repeat("名", 64), "topic": strings.Repeat("é", 512), "visibility": "public"}},
			{"EmptyTopic", map[string]string{"name": "x", "topic": "", "visibility": "public"}},
			{"WhiteSpaceTopic", map[string]string{"name": " padded ", "topic": "   ", "visibility": "private"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				room := MustDecode[chat.Room](t, owner.Do(t, http.MethodPost, "/v1/rooms", tc.body), http.StatusCreated)
				want := chat.Room{ID: room.ID, Name: tc.body["name"], Topic: tc.body["topic"], Visibility: chat.Visibility(tc.body["visibility"]),
					OwnerID: ownerID, MemberCount: 1, LastSeq: 1, CreatedAt: room.CreatedAt, LastReadSeq: ptr[int64](1), UnreadCount: ptr[int64](0)}
				if !reflect.DeepEqual(room, want) || room.ID == "" || room.CreatedAt.IsZero() || room.CreatedAt.Location().String() != "UTC" {
					t.Fatalf("created %+v, want %+v", room, want)
				}
				if got := MustGetRoom(t, owner, room.ID); !reflect.DeepEqual(got, room) {
					t.Fatalf("get %+v, want %+v", got, room)
				}
				evs := e.MustEvents(t, room.ID)
				if len(evs) != 1 || evs[0].Type != "member.joined" || evs[0].SubjectID != ownerID {
					t.Fatalf("log %+v, want the owner's member.joined as seq 1", evs)
				}
				members := MustMembers(t, owner, room.ID)
				if len(members) != 1 || members[0].User.ID != ownerID || members[0].Role != chat.RoleOwner {
					t.Fatalf("members %+v, want the owner alone", members)
				}
				after := e.MustCounts(t)
				if after.Rooms != before.Rooms+1 || after.Members != before.Members+1 || after.Events != before.Events+1 {
					t.Fatalf("counts %+v -> %+v, want one room, member and event more", before, after)
				}
			})
		}
	})

	t.Run("Get", func(t *testing.T) {
		pub := owner.MustCreateRoom(t, "get-public", chat.Public)
		priv := owner.MustCreateRoom(t, "get-private", chat.Private)
		MustAddMember(t, owner, priv.ID, memberID)
		for _, tc := range []struct {
			name   string
			caller *e2e.Client
			roomID string
			want   int
		}{
			{"PublicByOwner", owner, pub.ID, http.StatusOK},
			{"PublicByNonMember", outsider, pub.ID, http.StatusOK},
			{"PrivateByOwner", owner, priv.ID, http.StatusOK},
			{"PrivateByMember", member, priv.ID, http.StatusOK},
			{"PrivateByNonMember", outsider, priv.ID, http.StatusNotFound},
			{"Unknown", owner, unknownID(), http.StatusNotFound},
			{"NotAnID", owner, "not-an-id", http.StatusNotFound},
			{"Anonymous", e.Anonymous(), pub.ID, http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := tc.caller.Do(t, http.MethodGet, "/v1/rooms/"+tc.roomID, nil)
				MustStatus(t, resp, tc.want)
				if tc.want == http.StatusOK {
					var got chat.Room
					resp.JSON(t, &got)
					if got.ID != tc.roomID {
						t.Fatalf("got room %s, want %s", got.ID, tc.roomID)
					}
				}
			})
		}
	})

	t.Run("Update", func(t *testing.T) {
		room := owner.MustCreateRoom(t, "before", chat.Public)
		member.MustJoin(t, room.ID)
		name, topic, empty := "after", "new topic", ""
		for _, tc := range []struct {
			name            string
			body            map[string]*string
			wantName, topic string
		}{
			{"Name", map[string]*string{"name": &name}, "after", ""},
			{"Topic", map[string]*string{"topic": &topic}, "after", "new topic"},
			{"Both", map[string]*string{"name": &topic, "topic": &name}, "new topic", "after"},
			{"ClearTopic", map[string]*string{"topic": &empty}, "new topic", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := MustGetRoom(t, owner, room.ID)
				got := MustDecode[chat.Room](t, owner.Do(t, http.MethodPatch, "/v1/rooms/"+room.ID, tc.body), http.StatusOK)
				want := before
				want.Name, want.Topic, want.LastSeq = tc.wantName, tc.topic, before.LastSeq+1
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("patched %+v, want %+v", got, want)
				}
				// The member sees the same room with their own read state.
				if again := MustGetRoom(t, member, room.ID); shared(again) != shared(want) || again.LastReadSeq == nil {
					t.Fatalf("get after patch %+v, want %+v", again, want)
				}
				ev := e.MustLastEvent(t, room.ID)
				if ev.Type != "room.updated" || ev.Seq != want.LastSeq || ev.Data["name"] != want.Name || ev.Data["topic"] != want.Topic || ev.Data["id"] != room.ID {
					t.Fatalf("last event %+v, want room.updated with seq %d", ev, want.LastSeq)
				}
			})
		}
		// A PATCH that changes nothing answers the room and records nothing.
		same := "new topic"
		for _, tc := range []struct {
			name string
			body any
		}{
			{"NoChange/Empty", map[string]string{}},
			{"NoChange/SameName", map[string]*string{"name": &same}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := MustGetRoom(t, owner, room.ID)
				got := MustDecode[chat.Room](t, owner.Do(t, http.MethodPatch, "/v1/rooms/"+room.ID, tc.body), http.StatusOK)
				if !reflect.DeepEqual(got, before) {
					t.Fatalf("patched %+v, want the room unchanged %+v", got, before)
				}
				if ev := e.MustLastEvent(t, room.ID); ev.Seq != before.LastSeq {
					t.Fatalf("a no-op PATCH recorded event %+v", ev)
				}
			})
		}
	})

	t.Run("Delete", func(t *testing.T) {
		room := owner.MustCreateRoom(t, "doomed", chat.Public)
		member.MustJoin(t, room.ID)
		member.MustPost(t, room.ID, "last words")
		before := MustGetRoom(t, owner, room.ID)

		MustStatus(t, member.Do(t, http.MethodDelete, "/v1/rooms/"+room.ID, nil), http.StatusForbidden)
		MustStatus(t, owner.Do(t, http.MethodDelete, "/v1/rooms/"+room.ID, nil), http.StatusNoContent)

		ev := e.MustLastEvent(t, room.ID)
		if ev.Type != "room.deleted" || ev.Seq != before.LastSeq+1 || ev.Data["room_id"] != room.ID {
			t.Fatalf("last event %+v, want room.deleted with seq %d", ev, before.LastSeq+1)
		}
		if n := len(e.MustEvents(t, room.ID)); n != int(before.LastSeq)+1 {
			t.Fatalf("log holds %d events after delete, want %d: deleting keeps the log", n, before.LastSeq+1)
		}
		for _, tc := range []struct {
			name   string
			caller *e2e.Client
			method string
			path   string
			body   any
		}{
			{"GetByOwner", owner, http.MethodGet, "", nil},
			{"GetByMember", member, http.MethodGet, "", nil},
			{"DeleteAgain", owner, http.MethodDelete, "", nil},
			{"Patch", owner, http.MethodPatch, "", map[string]string{"name": "zombie"}},
			{"Join", outsider, http.MethodPost, "/join", nil},
			{"Leave", member, http.MethodPost, "/leave", nil},
			{"Members", member, http.MethodGet, "/members", nil},
			{"AddMember", owner, http.MethodPut, "/members/" + outsiderID, nil},
			{"RemoveMember", owner, http.MethodDelete, "/members/" + memberID, nil},
			{"Post", member, http.MethodPost, "/messages", map[string]string{"body": "hello?"}},
			{"History", member, http.MethodGet, "/messages", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				MustStatus(t, tc.caller.Do(t, tc.method, "/v1/rooms/"+room.ID+tc.path, tc.body), http.StatusNotFound)
			})
		}
		t.Run("Stream", func(t *testing.T) {
			MustStatus(t, MustStreamResponse(t, member, room.ID), http.StatusNotFound)
		})
		t.Run("NotListed", func(t *testing.T) {
			for _, scope := range []string{"joined", "public"} {
				for _, c := range []*e2e.Client{owner, member} {
					if l := MustListRooms(t, c, q("scope", scope, "limit", "100")); slices.Contains(ids(l.Rooms), room.ID) {
						t.Fatalf("deleted room listed in scope %s", scope)
					}
				}
			}
		})
		if n := len(e.MustEvents(t, room.ID)); n != int(before.LastSeq)+1 {
			t.Fatalf("calls on a deleted room changed its log: %d events", n)
		}
	})

	t.Run("Join", func(t *testing.T) {
		pub := owner.MustCreateRoom(t, "join-public", chat.Public)
		priv := owner.MustCreateRoom(t, "join-private", chat.Private)
		MustAddMember(t, owner, priv.ID, memberID)

		t.Run("OK", func(t *testing.T) {
			before := MustGetRoom(t, outsider, pub.ID)
			m := MustDecode[chat.Member](t, outsider.Do(t, http.MethodPost, "/v1/rooms/"+pub.ID+"/join", nil), http.StatusOK)
			if m.User.ID != outsiderID || m.User.Username != "outsider" || m.Role != chat.RoleMember || m.JoinedAt.IsZero() {
				t.Fatalf("joined as %+v", m)
			}
			after := MustGetRoom(t, outsider, pub.ID)
			if after.LastSeq != before.LastSeq+1 || after.MemberCount != before.MemberCount+1 {
				t.Fatalf("room %+v after join, before %+v", after, before)
			}
			ev := e.MustLastEvent(t, pub.ID)
			if ev.Type != "member.joined" || ev.SubjectID != outsiderID || ev.Seq != after.LastSeq {
				t.Fatalf("last event %+v, want member.joined of the joiner", ev)
			}

			t.Run("Again", func(t *testing.T) {
				again := MustDecode[chat.Member](t, outsider.Do(t, http.MethodPost, "/v1/rooms/"+pub.ID+"/join", nil), http.StatusOK)
				if !again.JoinedAt.Equal(m.JoinedAt) || again.Role != m.Role || again.User != m.User {
					t.Fatalf("second join %+v, want the first membership %+v", again, m)
				}
				if now := MustGetRoom(t, outsider, pub.ID); !reflect.DeepEqual(now, after) {
					t.Fatalf("second join changed the room: %+v, want %+v", now, after)
				}
				joins := 0
				for _, ev := range e.MustEvents(t, pub.ID) {
					if ev.Type == "member.joined" && ev.SubjectID == outsiderID {
						joins++
					}
				}
				if joins != 1 {
					t.Fatalf("%d member.joined events for one membership, want 1", joins)
				}
			})
		})

		// Joins racing each other: every one answers 200 with the one
		// membership, and each user's member.joined is recorded once.
		t.Run("Concurrent", func(t *testing.T) {
			const repeats = 15
			room := owner.MustCreateRoom(t, "join-race", chat.Public)
			joiners := []*e2e.Client{member, outsider}
			var calls []call
			for range repeats {
				for _, j := range joiners {
					calls = append(calls, call{j, http.MethodPost, "/v1/rooms/" + room.ID + "/join", nil})
				}
			}
			joinedAt := map[string]chat.Member{}
			for i, resp := range MustDoConcurrently(t, calls) {
				m := MustDecode[chat.Member](t, resp, http.StatusOK)
				if m.User.ID != calls[i].c.Session.User.ID || m.Role != chat.RoleMember {
					t.Fatalf("join %d answered %+v", i, m)
				}
				if first, ok := joinedAt[m.User.ID]; ok && !first.JoinedAt.Equal(m.JoinedAt) {
					t.Fatalf("two memberships for %s: joined at %s and %s", m.User.Username, first.JoinedAt, m.JoinedAt)
				}
				joinedAt[m.User.ID] = m
			}
			if r := MustGetRoom(t, owner, room.ID); r.LastSeq != 1+int64(len(joiners)) || r.MemberCount != 1+len(joiners) {
				t.Fatalf("room %+v, want one member.joined per joiner", r)
			}
			e.MustEvents(t, room.ID)
		})

		for _, tc := range []struct {
			name     string
			caller   *e2e.Client
			roomID   string
			want     int
			wantRole chat.Role
		}{
			{"OwnerOfPublic", owner, pub.ID, http.StatusOK, chat.RoleOwner},
			{"OwnerOfPrivate", owner, priv.ID, http.StatusOK, chat.RoleOwner},
			{"MemberOfPrivate", member, priv.ID, http.StatusOK, chat.RoleMember},
			{"PrivateByNonMember", outsider, priv.ID, http.StatusNotFound, ""},
			{"Unknown", outsider, unknownID(), http.StatusNotFound, ""},
			{"NotAnID", outsider, "nope", http.StatusNotFound, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				resp := tc.caller.Do(t, http.MethodPost, "/v1/rooms/"+tc.roomID+"/join", nil)
				MustStatus(t, resp, tc.want)
				if tc.want == http.StatusOK {
					var m chat.Member
					resp.JSON(t, &m)
					if m.Role != tc.wantRole || m.User.ID != tc.caller.Session.User.ID {
						t.Fatalf("member %+v, want role %q", m, tc.wantRole)
					}
				}
				if after := e.MustCounts(t); after != before {
					t.Fatalf("counts %+v -> %+v, want no change", before, after)
				}
			})
		}
	})

	t.Run("Leave", func(t *testing.T) {
		t.Run("OK", func(t *testing.T) {
			room := owner.MustCreateRoom(t, "leave", chat.Public)
			member.MustJoin(t, room.ID)
			before := MustGetRoom(t, member, room.ID)
			MustStatus(t, member.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/leave", nil), http.StatusNoContent)
			after := MustGetRoom(t, member, room.ID)
			if after.LastSeq != before.LastSeq+1 || after.MemberCount != before.MemberCount-1 {
				t.Fatalf("room %+v after leave, before %+v", after, before)
			}
			ev := e.MustLastEvent(t, room.ID)
			if ev.Type != "member.left" || ev.SubjectID != memberID || ev.Data["user_id"] != memberID || ev.Data["reason"] != "left" {
				t.Fatalf("last event %+v, want member.left with reason left", ev)
			}
			// Now a non-member of a public room.
			MustStatus(t, member.Do(t, http.MethodGet, "/v1/rooms/"+room.ID+"/messages", nil), http.StatusForbidden)
			MustStatus(t, member.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/leave", nil), http.StatusNotFound)
			if l := MustListRooms(t, member, q("scope", "joined", "limit", "100")); slices.Contains(ids(l.Rooms), room.ID) {
				t.Fatalf("left room still in the joined list")
			}
		})
		t.Run("PrivateRoomVanishes", func(t *testing.T) {
			room := owner.MustCreateRoom(t, "leave-private", chat.Private)
			MustAddMember(t, owner, room.ID, memberID)
			MustStatus(t, member.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/leave", nil), http.StatusNoContent)
			MustStatus(t, member.Do(t, http.MethodGet, "/v1/rooms/"+room.ID, nil), http.StatusNotFound)
			MustStatus(t, member.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/join", nil), http.StatusNotFound)
		})

		pub := owner.MustCreateRoom(t, "leave-errors", chat.Public)
		priv := owner.MustCreateRoom(t, "leave-errors-private", chat.Private)
		for _, tc := range []struct {
			name   string
			caller *e2e.Client
			roomID string
			want   int
		}{
			{"Owner", owner, pub.ID, http.StatusConflict},
			{"OwnerOfPrivate", owner, priv.ID, http.StatusConflict},
			{"NonMember", outsider, pub.ID, http.StatusNotFound},
			{"PrivateByNonMember", outsider, priv.ID, http.StatusNotFound},
			{"Unknown", outsider, unknownID(), http.StatusNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				MustStatus(t, tc.caller.Do(t, http.MethodPost, "/v1/rooms/"+tc.roomID+"/leave", nil), tc.want)
				if after := e.MustCounts(t); after != before {
					t.Fatalf("counts %+v -> %+v, want no change", before, after)
				}
			})
		}
	})

	t.Run("Members", func(t *testing.T) {
		room := owner.MustCreateRoom(t, "members", chat.Public)
		member.MustJoin(t, room.ID)
		for _, c := range []*e2e.Client{owner, member} {
			ms := MustMembers(t, c, room.ID)
			if len(ms) != 2 || ms[0].User.ID != ownerID || ms[0].Role != chat.RoleOwner ||
				ms[1].User.ID != memberID || ms[1].Role != chat.RoleMember || ms[1].User.Username != "member" {
				t.Fatalf("members %+v, want owner then member", ms)
			}
		}
		priv := owner.MustCreateRoom(t, "members-private", chat.Private)
		for _, tc := range []struct {
			name   string
			roomID string
			want   int
		}{
			{"PublicByNonMember", room.ID, http.StatusForbidden},
			{"PrivateByNonMember", priv.ID, http.StatusNotFound},
			{"Unknown", unknownID(), http.StatusNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				MustStatus(t, outsider.Do(t, http.MethodGet, "/v1/rooms/"+tc.roomID+"/members", nil), tc.want)
			})
		}
	})

	t.Run("AddMember", func(t *testing.T) {
		room := owner.MustCreateRoom(t, "add", chat.Private)

		t.Run("OK", func(t *testing.T) {
			before := MustGetRoom(t, owner, room.ID)
			m := MustAddMember(t, owner, room.ID, memberID)
			if m.User.ID != memberID || m.Role != chat.RoleMember || m.JoinedAt.IsZero() {
				t.Fatalf("added %+v", m)
			}
			after := MustGetRoom(t, member, room.ID)
			if after.LastSeq != before.LastSeq+1 || after.MemberCount != 2 {
				t.Fatalf("room %+v after add, before %+v", after, before)
			}
			ev := e.MustLastEvent(t, room.ID)
			user, _ := ev.Data["user"].(map[string]any)
			if ev.Type != "member.joined" || ev.SubjectID != memberID || user["id"] != memberID {
				t.Fatalf("last event %+v, want member.joined of the added user", ev)
			}
			if l := MustListRooms(t, member, q("scope", "joined")); !slices.Contains(ids(l.Rooms), room.ID) {
				t.Fatalf("added member does not see the room in the joined list")
			}

			t.Run("Again", func(t *testing.T) {
				again := MustAddMember(t, owner, room.ID, memberID)
				if again.User != m.User || again.Role != m.Role || !again.JoinedAt.Equal(m.JoinedAt) {
					t.Fatalf("second PUT %+v, want the member unchanged %+v", again, m)
				}
				if now := MustGetRoom(t, owner, room.ID); shared(now) != shared(after) {
					t.Fatalf("second PUT changed the room: %+v, want %+v", now, after)
				}
			})
			t.Run("Owner", func(t *testing.T) {
				o := MustAddMember(t, owner, room.ID, ownerID)
				if o.Role != chat.RoleOwner || o.User.ID != ownerID {
					t.Fatalf("PUT of the owner %+v, want the owner unchanged", o)
				}
				if now := MustGetRoom(t, owner, room.ID); shared(now) != shared(after) {
					t.Fatalf("PUT of the owner changed the room: %+v, want %+v", now, after)
				}
			})
		})

		pub := owner.MustCreateRoom(t, "add-public", chat.Public)
		for _, tc := range []struct {
			name   string
			caller *e2e.Client
			roomID string
			userID string
			want   int
		}{
			{"UnknownUser", owner, room.ID, unknownID(), http.StatusNotFound},
			{"NotAUserID", owner, room.ID, "bob", http.StatusNotFound},
			{"ByMember", member, room.ID, outsiderID, http.StatusForbidden},
			{"ByNonMemberOfPublic", outsider, pub.ID, outsiderID, http.StatusForbidden},
			{"ByNonMemberOfPrivate", outsider, room.ID, outsiderID, http.StatusNotFound},
			{"UnknownRoom", owner, unknownID(), outsiderID, http.StatusNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				MustStatus(t, tc.caller.Do(t, http.MethodPut, "/v1/rooms/"+tc.roomID+"/members/"+tc.userID, nil), tc.want)
				if after := e.MustCounts(t); after != before {
					t.Fatalf("counts %+v -> %+v, want no change", before, after)
				}
			})
		}
	})

	t.Run("RemoveMember", func(t *testing.T) {
		t.Run("OK", func(t *testing.T) {
			room := owner.MustCreateRoom(t, "remove", chat.Private)
			MustAddMember(t, owner, room.ID, memberID)
			before := MustGetRoom(t, owner, room.ID)
			MustStatus(t, owner.Do(t, http.MethodDelete, "/v1/rooms/"+room.ID+"/members/"+memberID, nil), http.StatusNoContent)
			after := MustGetRoom(t, owner, room.ID)
			if after.LastSeq != before.LastSeq+1 || after.MemberCount != before.MemberCount-1 {
				t.Fatalf("room %+v after remove, before %+v", after, before)
			}
			ev := e.MustLastEvent(t, room.ID)
			if ev.Type != "member.left" || ev.SubjectID != memberID || ev.Data["user_id"] != memberID || ev.Data["reason"] != "removed" {
				t.Fatalf("last event %+v, want member.left with reason removed", ev)
			}
			MustStatus(t, member.Do(t, http.MethodGet, "/v1/rooms/"+room.ID, nil), http.StatusNotFound)
			MustStatus(t, owner.Do(t, http.MethodDelete, "/v1/rooms/"+room.ID+"/members/"+memberID, nil), http.StatusNotFound)
		})

		room := owner.MustCreateRoom(t, "remove-errors", chat.Public)
		member.MustJoin(t, room.ID)
		priv := owner.MustCreateRoom(t, "remove-errors-private", chat.Private)
		for _, tc := range []struct {
			name   string
			caller *e2e.Client
			roomID string
			userID string
			want   int
		}{
			{"Self", owner, room.ID, ownerID, http.StatusConflict},
			{"NotAMember", owner, room.ID, outsiderID, http.StatusNotFound},
			{"UnknownUser", owner, room.ID, unknownID(), http.StatusNotFound},
			{"NotAUserID", owner, room.ID, "bob", http.StatusNotFound},
			{"ByMember", member, room.ID, ownerID, http.StatusForbidden},
			{"MemberRemovingSelf", member, room.ID, memberID, http.StatusForbidden},
			{"ByNonMemberOfPublic", outsider, room.ID, memberID, http.StatusForbidden},
			{"ByNonMemberOfPrivate", outsider, priv.ID, ownerID, http.StatusNotFound},
			{"UnknownRoom", owner, unknownID(), memberID, http.StatusNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.MustCounts(t)
				MustStatus(t, tc.caller.Do(t, http.MethodDelete, "/v1/rooms/"+tc.roomID+"/members/"+tc.userID, nil), tc.want)
				if after := e.MustCounts(t); after != before {
					t.Fatalf("counts %+v -> %+v, want no change", before, after)
				}
			})
		}
	})

	// A private room answers outsiders exactly as a room that does not
	// exist, so not even the error text tells them it is there.
	t.Run("PrivateRoomsDoNotLeak", func(t *testing.T) {
		priv := owner.MustCreateRoom(t, "hidden", chat.Private)
		MustAddMember(t, owner, priv.ID, memberID)
		member.MustPost(t, priv.ID, "psst")
		missing := unknownID()
		for _, tc := range []struct {
			name, method, path string
			body               any
		}{
			{"Get", http.MethodGet, "", nil},
			{"Patch", http.MethodPatch, "", map[string]string{"name": "mine"}},
			{"Delete", http.MethodDelete, "", nil},
			{"Join", http.MethodPost, "/join", nil},
			{"Leave", http.MethodPost, "/leave", nil},
			{"Members", http.MethodGet, "/members", nil},
			{"AddMember", http.MethodPut, "/members/" + outsiderID, nil},
			{"RemoveMember", http.MethodDelete, "/members/" + memberID, nil},
			{"Post", http.MethodPost, "/messages", map[string]string{"body": "hi"}},
			{"History", http.MethodGet, "/messages", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := outsider.Do(t, tc.method, "/v1/rooms/"+priv.ID+tc.path, tc.body).MustProblem(t, http.StatusNotFound)
				want := outsider.Do(t, tc.method, "/v1/rooms/"+missing+tc.path, tc.body).MustProblem(t, http.StatusNotFound)
				if got.Title != want.Title || got.Detail != want.Detail {
					t.Fatalf("private room answers %+v, a missing room %+v", got, want)
				}
			})
		}
		t.Run("Stream", func(t *testing.T) {
			got := MustStreamResponse(t, outsider, priv.ID).MustProblem(t, http.StatusNotFound)
			want := MustStreamResponse(t, outsider, missing).MustProblem(t, http.StatusNotFound)
			if got.Title != want.Title || got.Detail != want.Detail {
				t.Fatalf("private room answers %+v, a missing room %+v", got, want)
			}
		})
		t.Run("Lists", func(t *testing.T) {
			for _, scope := range []string{"public", "joined"} {
				if l := MustListRooms(t, outsider, q("scope", scope, "limit", "100")); slices.Contains(ids(l.Rooms), priv.ID) {
					t.Fatalf("private room in the outsider's %s list", scope)
				}
			}
			if l := MustListRooms(t, member, q("scope", "public", "limit", "100")); slices.Contains(ids(l.Rooms), priv.ID) {
				t.Fatalf("private room in the public list")
			}
			if l := MustListRooms(t, member, q("scope", "joined", "limit", "100")); !slices.Contains(ids(l.Rooms), priv.ID) {
				t.Fatalf("private room missing from its member's joined list")
			}
		})
		if n := len(e.MustEvents(t, priv.ID)); n != 3 {
			t.Fatalf("outsiders changed the private room's log: %d events, want 3", n)
		}
	})
}

package rooms

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
)

// TestBadInput: every room and message operation refuses bad input with
// the right 4xx as a problem+json, and stores nothing: the row counts, the
// room's last_seq, name and topic, and its history stay as they were.
func TestBadInput(t *testing.T) {
	e := MustEnv(t)
	owner := e.MustUser(t, "owner")
	member := e.MustUser(t, "member")
	room := owner.MustCreateRoom(t, "steady", chat.Public)
	member.MustJoin(t, room.ID)
	owner.MustPost(t, room.ID, "before")

	const (
		badRequest = http.StatusBadRequest
		tooLarge   = http.StatusRequestEntityTooLarge
		invalid    = http.StatusUnprocessableEntity
		notFound   = http.StatusNotFound
	)
	huge := []byte(`{"body":"` + strings.Repeat("a", 65<<10) + `"}`)
	// Unicode White_Space beyond ASCII: NBSP, NEL, ogham space, en quad,
	// hair space, line and paragraph separators, narrow NBSP, medium
	// mathematical space, ideographic space.
	unicodeSpace := "\u00a0\u0085\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"

	rooms, messages := "/v1/rooms", "/v1/rooms/"+room.ID+"/messages"
	roomPath := "/v1/rooms/" + room.ID
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any // []byte is sent as is
		want   int
	}{
		// createRoom
		{"CreateRoom/EmptyBody", http.MethodPost, rooms, []byte{}, badRequest},
		{"CreateRoom/InvalidJSON", http.MethodPost, rooms, []byte(`{"name":`), badRequest},
		{"CreateRoom/InvalidUTF8", http.MethodPost, rooms, []byte("{\"name\":\"caf\xe9\",\"visibility\":\"public\"}"), badRequest},
		{"CreateRoom/InvalidUTF8InTopic", http.MethodPost, rooms, []byte("{\"name\":\"ok\",\"topic\":\"\xff\xfe\",\"visibility\":\"public\"}"), badRequest},
		{"CreateRoom/Oversize", http.MethodPost, rooms, []byte(`{"name":"x","visibility":"public","topic":"` + strings.Repeat("t", 65<<10) + `"}`), tooLarge},
		{"CreateRoom/NotAnObject", http.MethodPost, rooms, []byte(`["general","public"]`), invalid},
		{"CreateRoom/String", http.MethodPost, rooms, []byte(`"general"`), invalid},
		{"CreateRoom/MissingName", http.MethodPost, rooms, map[string]any{"visibility": "public"}, invalid},
		{"CreateRoom/MissingVisibility", http.MethodPost, rooms, map[string]any{"name": "general"}, invalid},
		{"CreateRoom/NameNull", http.MethodPost, rooms, map[string]any{"name": nil, "visibility": "public"}, invalid},
		{"CreateRoom/NameNumber", http.MethodPost, rooms, map[string]any{"name": 42, "visibility": "public"}, invalid},
		{"CreateRoom/TopicArray", http.MethodPost, rooms, map[string]any{"name": "g", "topic": []string{"a"}, "visibility": "public"}, invalid},
		{"CreateRoom/VisibilityBoolean", http.MethodPost, rooms, map[string]any{"name": "g", "visibility": true}, invalid},
		{"CreateRoom/VisibilityUnknown", http.MethodPost, rooms, map[string]any{"name": "g", "visibility": "secret"}, invalid},
		{"CreateRoom/VisibilityCapitalized", http.MethodPost, rooms, map[string]any{"name": "g", "visibility": "Public"}, invalid},
		{"CreateRoom/VisibilityEmpty", http.MethodPost, rooms, map[string]any{"name": "g", "visibility": ""}, invalid},
		{"CreateRoom/UnknownField", http.MethodPost, rooms, map[string]any{"name": "g", "visibility": "public", "owner_id": owner.Session.User.ID}, invalid},
		{"CreateRoom/NameEmpty", http.MethodPost, rooms, map[string]any{"name": "", "visibility": "public"}, invalid},
		{"CreateRoom/NameTooLong", http.MethodPost, rooms, map[string]any{"name": strings.Repeat("n", 65), "visibility": "public"}, invalid},
		{"CreateRoom/NameTooLongMultiByte", http.MethodPost, rooms, map[string]any{"name": strings.Repeat("名", 65), "visibility": "public"}, invalid},
		{"CreateRoom/NameWhiteSpace", http.MethodPost, rooms, map[string]any{"name": " \t\n ", "visibility": "public"}, invalid},
		{"CreateRoom/NameUnicodeWhiteSpace", http.MethodPost, rooms, map[string]any{"name": unicodeSpace, "visibility": "public"}, invalid},
		{"CreateRoom/NameNUL", http.MethodPost, rooms, map[string]any{"name": "a\x00b", "visibility": "public"}, invalid},
		{"CreateRoom/TopicTooLong", http.MethodPost, rooms, map[string]any{"name": "g", "topic": strings.Repeat("t", 513), "visibility": "public"}, invalid},
		{"CreateRoom/TopicTooLongMultiByte", http.MethodPost, rooms, map[string]any{"name": "g", "topic": strings.Repeat("ü", 513), "visibility": "public"}, invalid},
		{"CreateRoom/TopicNUL", http.MethodPost, rooms, map[string]any{"name": "g", "topic": "\x00", "visibility": "public"}, invalid},

		// updateRoom
		{"UpdateRoom/EmptyBody", http.MethodPatch, roomPath, []byte{}, badRequest},
		{"UpdateRoom/InvalidJSON", http.MethodPatch, roomPath, []byte(`{name: "x"}`), badRequest},
		{"UpdateRoom/InvalidUTF8", http.MethodPatch, roomPath, []byte("{\"topic\":\"\xc3\x28\"}"), badRequest},
		{"UpdateRoom/Oversize", http.MethodPatch, roomPath, []byte(`{"topic":"` + strings.Repeat("t", 65<<10) + `"}`), tooLarge},
		{"UpdateRoom/NotAnObject", http.MethodPatch, roomPath, []byte(`[]`), invalid},
		{"UpdateRoom/NameNumber", http.MethodPatch, roomPath, map[string]any{"name": 1}, invalid},
		{"UpdateRoom/TopicBoolean", http.MethodPatch, roomPath, map[string]any{"topic": false}, invalid},
		{"UpdateRoom/UnknownField", http.MethodPatch, roomPath, map[string]any{"name": "x", "visibility": "private"}, invalid},
		{"UpdateRoom/NameEmpty", http.MethodPatch, roomPath, map[string]any{"name": ""}, invalid},
		{"UpdateRoom/NameTooLong", http.MethodPatch, roomPath, map[string]any{"name": strings.Repeat("n", 65)}, invalid},
		{"UpdateRoom/NameTooLongMultiByte", http.MethodPatch, roomPath, map[string]any{"name": strings.Repeat("😀", 65)}, invalid},
		{"UpdateRoom/NameWhiteSpace", http.MethodPatch, roomPath, map[string]any{"name": "   "}, invalid},
		{"UpdateRoom/NameUnicodeWhiteSpace", http.MethodPatch, roomPath, map[string]any{"name": "\u3000"}, invalid},
		{"UpdateRoom/NameNUL", http.MethodPatch, roomPath, map[string]any{"name": "\x00"}, invalid},
		{"UpdateRoom/TopicTooLong", http.MethodPatch, roomPath, map[string]any{"topic": strings.Repeat("t", 513)}, invalid},
		{"UpdateRoom/TopicNUL", http.MethodPatch, roomPath, map[string]any{"topic": "a\x00"}, invalid},
		{"UpdateRoom/ValidNameBadTopic", http.MethodPatch, roomPath, map[string]any{"name": "renamed", "topic": strings.Repeat("t", 513)}, invalid},
		{"UpdateRoom/NotAnID", http.MethodPatch, "/v1/rooms/steady", map[string]any{"name": "x"}, notFound},

		// postMessage
		{"PostMessage/EmptyBody", http.MethodPost, messages, []byte{}, badRequest},
		{"PostMessage/InvalidJSON", http.MethodPost, messages, []byte(`{"body":"unterminated}`), badRequest},
		{"PostMessage/InvalidUTF8", http.MethodPost, messages, []byte("{\"body\":\"\xff\"}"), badRequest},
		{"PostMessage/InvalidUTF8Truncated", http.MethodPost, messages, []byte("{\"body\":\"\xe2\x82\"}"), badRequest},
		{"PostMessage/LoneSurrogateEscape", http.MethodPost, messages, []byte(`{"body":"\ud800"}`), badRequest},
		{"PostMessage/LowSurrogateEscape", http.MethodPost, messages, []byte(`{"body":"ok \udc00"}`), badRequest},
		// Found by make fuzz: a body ending in a backslash after a high
		// surrogate's escape panicked the surrogate check (a 500).
		{"PostMessage/HighSurrogateThenBackslashAtEnd", http.MethodPost, messages, []byte(`{"body":"\ud800\`), badRequest},
		{"PostMessage/InvalidUTF8Surrogate", http.MethodPost, messages, []byte("{\"body\":\"\xed\xa0\x80\"}"), badRequest},
		{"PostMessage/InvalidUTF8InClientID", http.MethodPost, messages, []byte("{\"body\":\"ok\",\"client_id\":\"\xc0\xaf\"}"), badRequest},
		{"PostMessage/Oversize", http.MethodPost, messages, huge, tooLarge},
		{"PostMessage/NotAnObject", http.MethodPost, messages, []byte(`"hello"`), invalid},
		{"PostMessage/MissingBody", http.MethodPost, messages, map[string]any{"client_id": "k"}, invalid},
		{"PostMessage/BodyNull", http.MethodPost, messages, map[string]any{"body": nil}, invalid},
		{"PostMessage/BodyNumber", http.MethodPost, messages, map[string]any{"body": 7}, invalid},
		{"PostMessage/BodyObject", http.MethodPost, messages, map[string]any{"body": map[string]string{"text": "hi"}}, invalid},
		{"PostMessage/ClientIDNumber", http.MethodPost, messages, map[string]any{"body": "hi", "client_id": 12}, invalid},
		{"PostMessage/UnknownField", http.MethodPost, messages, map[string]any{"body": "hi", "seq": 99}, invalid},
		{"PostMessage/BodyEmpty", http.MethodPost, messages, map[string]any{"body": ""}, invalid},
		{"PostMessage/WhiteSpace", http.MethodPost, messages, map[string]any{"body": " \t\r\n\v\f "}, invalid},
		{"PostMessage/IdeographicSpace", http.MethodPost, messages, map[string]any{"body": "\u3000"}, invalid},
		{"PostMessage/UnicodeWhiteSpace", http.MethodPost, messages, map[string]any{"body": unicodeSpace}, invalid},
		{"PostMessage/NUL", http.MethodPost, messages, map[string]any{"body": "a\x00b"}, invalid},
		{"PostMessage/OnlyNUL", http.MethodPost, messages, map[string]any{"body": "\x00"}, invalid},
		{"PostMessage/TooLong", http.MethodPost, messages, map[string]any{"body": strings.Repeat("a", 4001)}, invalid},
		{"PostMessage/TooLongTwoByte", http.MethodPost, messages, map[string]any{"body": strings.Repeat("ü", 4001)}, invalid},
		{"PostMessage/TooLongFourByte", http.MethodPost, messages, map[string]any{"body": strings.Repeat("😀", 4001)}, invalid},
		{"PostMessage/ClientIDTooLong", http.MethodPost, messages, map[string]any{"body": "hi", "client_id": strings.Repeat("k", 65)}, invalid},
		{"PostMessage/ClientIDTooLongMultiByte", http.MethodPost, messages, map[string]any{"body": "hi", "client_id": strings.Repeat("é", 65)}, invalid},
		{"PostMessage/ClientIDNUL", http.MethodPost, messages, map[string]any{"body": "hi", "client_id": "k\x00"}, invalid},
		{"PostMessage/NotAnID", http.MethodPost, "/v1/rooms/steady/messages", map[string]any{"body": "hi"}, notFound},

		// listRooms and listMessages: bad parameters
		{"ListRooms/Limit0", http.MethodGet, rooms + "?limit=0", nil, invalid},
		{"ListRooms/Limit101", http.MethodGet, rooms + "?limit=101", nil, invalid},
		{"ListRooms/Scope", http.MethodGet, rooms + "?scope=all", nil, invalid},
		{"ListRooms/Cursor", http.MethodGet, rooms + "?cursor=bogus", nil, invalid},
		{"ListMessages/BeforeAndAfter", http.MethodGet, messages + "?before=5&after=1", nil, invalid},
		{"ListMessages/Negative", http.MethodGet, messages + "?after=-1", nil, invalid},
		{"ListMessages/Limit0", http.MethodGet, messages + "?limit=0", nil, invalid},
		{"ListMessages/Limit101", http.MethodGet, messages + "?limit=101", nil, invalid},
		{"ListMessages/NotAnID", http.MethodGet, "/v1/rooms/steady/messages", nil, notFound},

		// Ids that are not ids name nothing.
		{"GetRoom/NotAnID", http.MethodGet, "/v1/rooms/steady", nil, notFound},
		{"DeleteRoom/NotAnID", http.MethodDelete, "/v1/rooms/steady", nil, notFound},
		{"JoinRoom/NotAnID", http.MethodPost, "/v1/rooms/steady/join", nil, notFound},
		{"LeaveRoom/NotAnID", http.MethodPost, "/v1/rooms/steady/leave", nil, notFound},
		{"ListMembers/NotAnID", http.MethodGet, "/v1/rooms/steady/members", nil, notFound},
		{"AddMember/NotARoomID", http.MethodPut, "/v1/rooms/steady/members/" + member.Session.User.ID, nil, notFound},
		{"AddMember/NotAUserID", http.MethodPut, roomPath + "/members/member", nil, notFound},
		{"RemoveMember/NotARoomID", http.MethodDelete, "/v1/rooms/steady/members/" + member.Session.User.ID, nil, notFound},
		{"RemoveMember/NotAUserID", http.MethodDelete, roomPath + "/members/member", nil, notFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.MustCounts(t)
			roomBefore := MustGetRoom(t, owner, room.ID)
			histBefore := MustHistory(t, owner, room.ID, nil)

			owner.Do(t, tc.method, tc.path, tc.body).MustProblem(t, tc.want)

			if after := e.MustCounts(t); after != before {
				t.Fatalf("counts %+v -> %+v, want no change", before, after)
			}
			if after := MustGetRoom(t, owner, room.ID); !reflect.DeepEqual(after, roomBefore) {
				t.Fatalf("room %+v -> %+v, want no change", roomBefore, after)
			}
			if after := MustHistory(t, owner, room.ID, nil); len(after.Messages) != len(histBefore.Messages) {
				t.Fatalf("history holds %d messages, before %d", len(after.Messages), len(histBefore.Messages))
			}
		})
	}
	if l := MustListRooms(t, owner, q("scope", "joined")); len(l.Rooms) != 1 || l.Rooms[0].ID != room.ID {
		t.Fatalf("owner's rooms %v, want only %s", ids(l.Rooms), room.ID)
	}
}

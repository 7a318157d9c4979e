package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	sse "github.com/tmaxmax/go-sse"

	"github.com/parley-chat/parley/internal/chat"
)

// The fuzz targets below run in make fuzz (one go test -fuzz per target);
// under plain go test they run their seeds (testdata/fuzz/<target>/ and
// f.Add) as regression tests.

// FuzzCheckBody sends any body through the raw-body checks: the answer is
// never a 5xx, a refusal is a problem, and a body let through reaches the
// operation byte for byte. A body let through that encoding/json decodes
// holds no replacement character the client did not send: invalid UTF-8
// and lone surrogate escapes were refused, not silently replaced.
func FuzzCheckBody(f *testing.F) {
	for _, s := range []string{
		`{"body":"hello"}`, `{"body":"\ud83d\ude00"}`, `{"body":"\ud83d"}`, `{"body":"\ude00\ud83d"}`,
		`{"body":"\\ud800"}`, `{"body":"\uD800\u0041"}`, "{\"body\":\"\xff\"}", `{"body":"\ufffd"}`,
		strings.Repeat("[", 40) + strings.Repeat("]", 40), `{"a":"[[[[","b":[[]]}`, `"\`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []byte
		h := checkBody(0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/rooms", bytes.NewReader(body)))
		switch rec.Code {
		case http.StatusNoContent:
			if !bytes.Equal(got, body) {
				t.Fatalf("the operation read %q, the client sent %q", got, body)
			}
			var v any
			if json.Unmarshal(body, &v) != nil {
				return
			}
			out, _ := json.Marshal(v)
			if bytes.ContainsRune(out, utf8.RuneError) && !bytes.ContainsRune(body, utf8.RuneError) &&
				!bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
				t.Fatalf("accepted %q, which decodes to a replacement character: %s", body, out)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("refusal %d as %q", rec.Code, ct)
			}
		default:
			t.Fatalf("body %q answered %d", body, rec.Code)
		}
	})
}

// referenceDepth is how deeply a valid JSON text nests, by encoding/json.
func referenceDepth(t *testing.T, b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // a valid number may not fit a float64
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return deepest
		}
		if err != nil {
			t.Fatalf("token of valid JSON %q: %v", b, err)
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// FuzzJSONDepth checks the depth counter against encoding/json on valid
// JSON: it refuses exactly the texts nested deeper than the limit. On any
// other input it must not panic.
func FuzzJSONDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[[[]]]`, `{"a":"[{"}`, `["\"[",[]]`, `"\\"`, `[{"a":[{"b":[]}]}]`, `]]]][[`} {
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit = max(0, limit%40)
		got := jsonDepth(b, limit)
		if !json.Valid(b) {
			return
		}
		want := referenceDepth(t, b)
		if (got > limit) != (want > limit) || got <= limit && got != want {
			t.Fatalf("jsonDepth(%q, %d) = %d, encoding/json says %d", b, limit, got, want)
		}
	})
}

// parseFrames reads an SSE body as a client (go-sse) does.
func parseFrames(t *testing.T, body []byte) []sse.Event {
	var evs []sse.Event
	for ev, err := range sse.Read(bytes.NewReader(body), &sse.ReadConfig{MaxEventSize: 1 << 22}) {
		if err != nil {
			t.Fatalf("read frames %q: %v", body, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// FuzzFrame checks the frame encoder against an SSE client: whatever the
// data, it comes back as exactly one event with that event type, that id
// and that data (line breaks as a client reports them, \n).
func FuzzFrame(f *testing.F) {
	f.Add("42", "message", []byte(`{"body":"hi"}`))
	f.Add("", "ready", []byte(`{"room_id":"r","last_seq":3}`))
	f.Add("AdQFAQcMsR3pVtqKnS0xV0Q", "member.joined", []byte("a\n\nid: 99\nevent: room.deleted\ndata: {}\n\n"))
	f.Add("7", "message", []byte("x\r\ny\rz\n"))
	f.Add("7", "message", []byte(": ping\n\nretry: 1\n"))
	f.Fuzz(func(t *testing.T, id, event string, data []byte) {
		if !validIDOrType(id) || !validIDOrType(event) || event == "" {
			t.Skip("ids and event types are Parley's own: digits, cursors and type names")
		}
		if len(data) == 0 {
			t.Skip("SSE dispatches no event with empty data; Parley's data is JSON, never empty")
		}
		evs := parseFrames(t, appendFrame(nil, id, event, data))
		if len(evs) != 1 {
			t.Fatalf("data %q made %d events: %+v", data, len(evs), evs)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
		if evs[0].Data != want || evs[0].Type != event || evs[0].LastEventID != id {
			t.Fatalf("frame (%q, %q, %q) read back as %+v", id, event, data, evs[0])
		}
	})
}

// validIDOrType reports whether s could be an id or an event type Parley
// sends: printable ASCII with no space (seqs, base64url cursors, names).
func validIDOrType(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// FuzzMessageFrame posts any body into a message event's frame: it is read
// back as exactly one message event whose body is the one posted, so no
// body can end its frame early or forge another.
func FuzzMessageFrame(f *testing.F) {
	for _, s := range []string{"hello", "a\n\nid: 9\nevent: room.deleted\ndata: {}\n\n", "\r\n\r\n", "data: x", "\u2028\u2029", "</script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if chat.CheckText("body", body, chat.BodyMin, chat.BodyMax) != nil {
			t.Skip("not a body the API takes")
		}
		data, err := json.Marshal(chat.Message{ID: "m", RoomID: "r", Seq: 5, Body: body, Reactions: []chat.Reaction{}})
		if err != nil {
			t.Fatal(err)
		}
		evs := parseFrames(t, appendFrame(nil, "5", string(chat.EventMessage), data))
		if len(evs) != 1 || evs[0].Type != "message" || evs[0].LastEventID != "5" {
			t.Fatalf("body %q made frames %+v", body, evs)
		}
		var m chat.Message
		if err := json.Unmarshal([]byte(evs[0].Data), &m); err != nil || m.Body != body {
			t.Fatalf("body %q read back as %q (%v)", body, m.Body, err)
		}
	})
}

// FuzzRefuseDotKeys sends any path through the reaction key guard: no
// panic, and nothing but a 422 problem or the next handler.
func FuzzRefuseDotKeys(f *testing.F) {
	for _, s := range []string{"/v1/rooms/r/messages/m/reactions/.", "/v1/rooms/r/messages/m/reactions/%2E%2E", "/v1/rooms", "//", "/v1/rooms/r/messages/m/reactions/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, err := http.NewRequest(http.MethodPut, "http://parley"+path, nil)
		if err != nil {
			t.Skip("not a URL")
		}
		rec := httptest.NewRecorder()
		refuseDotKeys(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })).ServeHTTP(rec, r)
		if rec.Code != http.StatusNoContent && rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("path %q answered %d", path, rec.Code)
		}
		seg := strings.Split(r.URL.Path, "/")
		if rec.Code == http.StatusUnprocessableEntity && (len(seg) != 8 || seg[7] != "." && seg[7] != "..") {
			t.Fatalf("path %q refused", path)
		}
	})
}

// BenchmarkAppendFrame encodes a typical message event's frame, as every
// stream write does.
func BenchmarkAppendFrame(b *testing.B) {
	data, err := json.Marshal(chat.Message{ID: "0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d", RoomID: "1e2f3a4b-5d2f-4a8b-9c7d-0b9a3c1e5c6d",
		Seq: 123456, Body: strings.Repeat("a chat message of some length ", 8), Reactions: []chat.Reaction{}})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendFrame(buf[:0], "123456", "message", data)
	}
}

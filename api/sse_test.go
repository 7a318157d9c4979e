package api

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []sseFrame
		last  string
		retry time.Duration
	}{
		{"LF", "retry: 1000\n\nid: 1\nevent: member.joined\ndata: {}\n\n", []sseFrame{{typ: "member.joined", id: "1", hasID: true, data: "{}"}}, "1", time.Second},
		{"CRLF", "id: 2\r\ndata: a\r\n\r\n", []sseFrame{{typ: "message", id: "2", hasID: true, data: "a"}}, "2", 0},
		{"CR", "id: 3\rdata: a\r\r", []sseFrame{{typ: "message", id: "3", hasID: true, data: "a"}}, "3", 0},
		{"MultiLineData", "data: a\ndata:b\ndata\n\n", []sseFrame{{typ: "message", data: "a\nb\n"}}, "", 0},
		{"CommentsSkipped", ": ping\n\n: ping\nevent: ready\ndata: {}\n\n", []sseFrame{{typ: "ready", data: "{}"}}, "", 0},
		{"NoIDKeepsLast", "id: 7\ndata: x\n\nevent: typing\ndata: y\n\n", []sseFrame{{typ: "message", id: "7", hasID: true, data: "x"}, {typ: "typing", data: "y"}}, "7", 0},
		{"IDWithoutDataNotDispatched", "id: 9\n\ndata: z\n\n", []sseFrame{{typ: "message", data: "z"}}, "9", 0},
		{"UnfinishedFrameDropped", "data: done\n\ndata: half", []sseFrame{{typ: "message", data: "done"}}, "", 0},
		{"BadRetryIgnored", "retry: 1x\ndata: a\n\n", []sseFrame{{typ: "message", data: "a"}}, "", 0},
		{"FieldWithoutSpace", "event:x\ndata:1\n\n", []sseFrame{{typ: "x", data: "1"}}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newSSEReader(strings.NewReader(tt.in))
			var got []sseFrame
			for {
				f, err := r.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, f)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("frame %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if r.lastID != tt.last || r.retry != tt.retry {
				t.Fatalf("last id %q retry %s, want %q %s", r.lastID, r.retry, tt.last, tt.retry)
			}
		})
	}
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		typ  string
		user bool
		data string
		want string // the payload's Go type
	}{
		{EventMessage, false, `{"id":"m1","seq":2}`, "*api.Message"},
		{EventReady, false, `{"room_id":"r","last_seq":3}`, "*api.Ready"},
		{EventReady, true, `{"cursor":"abc"}`, "*api.UserReady"},
		{EventTyping, false, `{"room_id":"r","user_id":"u"}`, "*api.Typing"},
		{EventMemberRead, true, `{"room_id":"r","user_id":"u","last_read_seq":4}`, "*api.MemberRead"},
		{EventPresence, true, `{"user_id":"u","online":true}`, "*api.Presence"},
		{"something.new", false, `{"x":1}`, "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			p, err := decodePayload(tt.typ, []byte(tt.data), tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if got := typeName(p); got != tt.want {
				t.Fatalf("payload %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := decodePayload(EventMessage, []byte(`{"seq":"x"}`), false); err == nil {
		t.Fatal("a message with a string seq decoded")
	}
}

func typeName(v any) string {
	if v == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%T", v)
}

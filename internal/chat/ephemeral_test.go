package chat_test

import (
	"testing"

	"github.com/parley-chat/parley/internal/chat"
)

func TestEphemeralType(t *testing.T) {
	tests := []struct {
		typ  chat.EventType
		want bool
	}{
		{chat.EventTyping, true},
		{chat.EventMemberRead, true},
		{chat.EventPresence, true},
		{chat.EventMessage, false},
		{chat.EventMemberJoined, false},
		{"ready", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := chat.EphemeralType(tt.typ); got != tt.want {
			t.Errorf("EphemeralType(%q) = %v, want %v", tt.typ, got, tt.want)
		}
	}
}

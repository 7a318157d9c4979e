package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

func (s *Server) registerTyping() {
	o := authed(op("sendTyping", http.MethodPost, "/v1/rooms/{room_id}/typing", "Say you are typing", "Streams", http.StatusNoContent,
		http.StatusForbidden, http.StatusNotFound, http.StatusServiceUnavailable))
	o.Description = "Members only. Sends a `typing` event `{room_id, user_id}` to the other members' room and user streams, " +
		"on every replica. Call it as the user types (every keystroke is fine): at most one event per user and room every " +
		"2 s goes out, across all replicas; the rest are answered 204 and dropped. Not counted against the write limit. " +
		"Nothing is stored."
	huma.Register(s.api, o, func(ctx context.Context, in *RoomPath) (*struct{}, error) {
		userID := principal(ctx).UserID
		// Membership is read, never written: a keystroke costs no write.
		if _, err := s.Rooms.CheckStream(ctx, userID, in.RoomID); err != nil {
			return nil, s.problem(ctx, err)
		}
		if s.Signals == nil {
			return nil, s.problem(ctx, chat.Errorf(chat.EUnavailable, "typing is unavailable"))
		}
		s.Signals.Typing(in.RoomID, userID)
		return &struct{}{}, nil
	})
}

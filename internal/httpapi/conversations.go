package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

// MessagePath is the path parameters of operations on one message.
type MessagePath struct {
	RoomPath
	MessageID string `path:"message_id" maxLength:"64" example:"3c6ffe44-5deb-4fa9-acae-8f368fd14d20" doc:"Message id."`
}

// ReactionPath is the path parameters of reaction operations.
type ReactionPath struct {
	MessagePath
	Key string `path:"key" minLength:"1" maxLength:"32" example:"👍" doc:"An emoji or a short code: 1-32 code points, no white space or control characters, not \".\" or \"..\". Percent-encode it in the path."`
}

// EditMessageRequest is the body of editMessage.
type EditMessageRequest struct {
	Body string `json:"body" minLength:"1" maxLength:"4000" example:"Hello, room! (fixed a typo)" doc:"The new text: 1-4000 Unicode code points, not only white space, no NUL."`
}

// MarkReadRequest is the body of markRead.
type MarkReadRequest struct {
	Seq int64 `json:"seq" minimum:"0" example:"42" doc:"The seq read up to, usually the last one shown; at most the room's last_seq."`
}

// Unread is the caller's unread messages over all their rooms.
type Unread struct {
	UnreadCount int64            `json:"unread_count" example:"5" doc:"The sum of the rooms' unread counts, for an app badge."`
	Rooms       []chat.ReadState `json:"rooms" nullable:"false" doc:"The caller's rooms with unread messages, newest room first."`
}

type messageOutput struct{ Body chat.Message }

func (s *Server) registerConversations() {
	const tag, reactTag, readTag = "Messages", "Reactions", "Read state"
	huma.Register(s.api, authed(op("getMessage", http.MethodGet, "/v1/rooms/{room_id}/messages/{message_id}", "Get a message", tag, http.StatusOK,
		http.StatusForbidden, http.StatusNotFound)),
		func(ctx context.Context, in *MessagePath) (*messageOutput, error) {
			msg, err := s.Rooms.FindMessage(ctx, principal(ctx).UserID, in.RoomID, in.MessageID)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &messageOutput{msg}, nil
		})

	edit := authed(op("editMessage", http.MethodPatch, "/v1/rooms/{room_id}/messages/{message_id}", "Edit a message (author only)", tag, http.StatusOK,
		http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity,
		http.StatusTooManyRequests))
	edit.Description = "The author only (others get 403). Records a message.edited event carrying the message after the edit; " +
		"an edit that changes nothing answers 200 and records nothing. A deleted message is 404. Counts against the write limit."
	huma.Register(s.api, edit, func(ctx context.Context, in *struct {
		MessagePath
		Body EditMessageRequest
	}) (*messageOutput, error) {
		msg, err := s.Rooms.EditMessage(ctx, principal(ctx).UserID, in.RoomID, in.MessageID, in.Body.Body)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &messageOutput{msg}, nil
	})

	del := authed(op("deleteMessage", http.MethodDelete, "/v1/rooms/{room_id}/messages/{message_id}", "Delete a message (author or owner)", tag, http.StatusNoContent,
		http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests))
	del.Description = "The author, or the room owner. The message stays in history as a tombstone (deleted_at set, body empty, " +
		"no reactions); its text is erased from the database and from every replay (the message event and its message.edited " +
		"events are rewritten). Records a message.deleted event. A message already deleted is 404. Counts against the write limit."
	huma.Register(s.api, del, func(ctx context.Context, in *MessagePath) (*struct{}, error) {
		if err := s.Rooms.DeleteMessage(ctx, principal(ctx).UserID, in.RoomID, in.MessageID); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &struct{}{}, nil
	})

	add := authed(op("addReaction", http.MethodPut, "/v1/rooms/{room_id}/messages/{message_id}/reactions/{key}", "React to a message", reactTag, http.StatusOK,
		http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusTooManyRequests))
	add.Description = "Members. Idempotent: the first PUT records a reaction.added event, a repeat answers the same and records " +
		"nothing. Answers the key's count. A deleted message is 404. Counts against the write limit."
	huma.Register(s.api, add, func(ctx context.Context, in *ReactionPath) (*struct{ Body chat.Reaction }, error) {
		r, err := s.Rooms.AddReaction(ctx, principal(ctx).UserID, in.RoomID, in.MessageID, in.Key)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &struct{ Body chat.Reaction }{r}, nil
	})

	remove := authed(op("removeReaction", http.MethodDelete, "/v1/rooms/{room_id}/messages/{message_id}/reactions/{key}", "Take a reaction back", reactTag, http.StatusNoContent,
		http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusTooManyRequests))
	remove.Description = "Members. Records a reaction.removed event if the caller had reacted with this key; otherwise answers 204 " +
		"and records nothing. A deleted message is 404. Counts against the write limit."
	huma.Register(s.api, remove, func(ctx context.Context, in *ReactionPath) (*struct{}, error) {
		if err := s.Rooms.RemoveReaction(ctx, principal(ctx).UserID, in.RoomID, in.MessageID, in.Key); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &struct{}{}, nil
	})

	read := authed(op("markRead", http.MethodPut, "/v1/rooms/{room_id}/read", "Move your read marker", readTag, http.StatusOK,
		http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity))
	read.Description = "Members. The marker only moves forward: a seq below it answers 200 with the state unchanged; a seq beyond " +
		"the room's last_seq is 422. unread_count counts the messages after the marker that are neither yours nor deleted. " +
		"Posting moves your marker to your new message by itself."
	huma.Register(s.api, read, func(ctx context.Context, in *struct {
		RoomPath
		Body MarkReadRequest
	}) (*struct{ Body chat.ReadState }, error) {
		rs, err := s.Rooms.MarkRead(ctx, principal(ctx).UserID, in.RoomID, in.Body.Seq)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &struct{ Body chat.ReadState }{rs}, nil
	})

	unread := authed(op("getUnread", http.MethodGet, "/v1/me/unread", "Count your unread messages", readTag, http.StatusOK))
	unread.Description = "The total for an app badge, and the read state of each of your rooms with unread messages."
	huma.Register(s.api, unread, func(ctx context.Context, _ *struct{}) (*struct{ Body Unread }, error) {
		total, rooms, err := s.Rooms.FindUnread(ctx, principal(ctx).UserID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		if rooms == nil {
			rooms = []chat.ReadState{}
		}
		return &struct{ Body Unread }{Unread{UnreadCount: total, Rooms: rooms}}, nil
	})
}

// refuseDotKeys answers 422 for a reaction key of "." or "..": the router
// cleans such a path segment away and would redirect the request to
// another URL instead of reaching the operation, so it is refused first.
// r.URL.Path is decoded, so %2E and %2E%2E are caught as well.
func refuseDotKeys(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seg := strings.Split(r.URL.Path, "/")
		// "", "v1", "rooms", room, "messages", message, "reactions", key
		if len(seg) == 8 && seg[1] == "v1" && seg[2] == "rooms" && seg[4] == "messages" && seg[6] == "reactions" &&
			(seg[7] == "." || seg[7] == "..") {
			writeProblem(w, http.StatusUnprocessableEntity, `a reaction key must not be "." or ".."`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

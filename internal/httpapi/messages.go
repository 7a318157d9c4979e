package httpapi

import (
	"context"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

// PostMessageRequest is the body of postMessage.
type PostMessageRequest struct {
	Body     string `json:"body" minLength:"1" maxLength:"4000" example:"Hello, room!" doc:"1-4000 Unicode code points, not only white space, no NUL; stored exactly as posted."`
	ClientID string `json:"client_id,omitempty" required:"false" maxLength:"64" example:"m-2f6c1a" doc:"Idempotency key, unique per room and author: repeating it with the same body as first posted returns the message's current state (200: edited body, or tombstone); with a different body, 409."`
	ReplyTo  string `json:"reply_to,omitempty" required:"false" maxLength:"64" format:"uuid" example:"9d0c4b7a-1e2f-4a3b-8c5d-6e7f8a9b0c1d" doc:"The id of a message of the same room this one replies to; any other id is 422."`
}

// MessagePage is a page of history, ascending by seq.
type MessagePage struct {
	Messages []chat.Message `json:"messages" nullable:"false"`
	HasMore  bool           `json:"has_more" doc:"Whether more messages lie beyond this page (older ones without after, newer ones with after)."`
}

type historyInput struct {
	RoomPath
	Before int64 `query:"before" minimum:"0" doc:"Return the limit messages just below this seq."`
	After  int64 `query:"after" minimum:"0" doc:"Return the first limit messages above this seq."`
	Limit  int   `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"Page size."`

	hasBefore, hasAfter bool
}

// Resolve records which cursors were given: after=0 (from the start) is not
// the same as no cursor (the latest page). An empty value is no cursor, as
// Huma treats it when parsing (before= must not read as before=0, an empty
// page that hides the whole history).
func (in *historyInput) Resolve(ctx huma.Context) []error {
	u := ctx.URL()
	q := u.Query()
	in.hasBefore, in.hasAfter = q.Get("before") != "", q.Get("after") != ""
	if in.hasBefore && in.hasAfter {
		return []error{&huma.ErrorDetail{Message: "give before or after, not both", Location: "query.after", Value: in.After}}
	}
	return nil
}

func (s *Server) registerMessages() {
	const tag = "Messages"
	post := authed(op("postMessage", http.MethodPost, "/v1/rooms/{room_id}/messages", "Post a message", tag, http.StatusCreated,
		http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity,
		http.StatusTooManyRequests))
	post.Description = "Answers 201 with the new message, or 200 with the original when client_id repeats with the same body."
	post.Responses = map[string]*huma.Response{"200": {
		Description: "The message stored earlier under the same client_id.",
		Content: map[string]*huma.MediaType{"application/json": {
			Schema: s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(chat.Message{}), true, "Message"),
		}},
	}}
	huma.Register(s.api, post, func(ctx context.Context, in *struct {
		RoomPath
		Body PostMessageRequest
	}) (*struct {
		Status int
		Body   chat.Message
	}, error) {
		msg, created, err := s.Rooms.PostMessage(ctx, principal(ctx).UserID, in.RoomID, chat.MessagePost(in.Body))
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return &struct {
			Status int
			Body   chat.Message
		}{status, msg}, nil
	})

	history := authed(op("listMessages", http.MethodGet, "/v1/rooms/{room_id}/messages", "Read a room's message history", tag, http.StatusOK,
		http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity))
	history.Description = "Messages only, ascending by seq (their seq values skip numbers other room events took). " +
		"No cursor: the latest limit messages. before=N: the limit messages just below N. after=N: the first limit messages above N. " +
		"Giving both is 422."
	huma.Register(s.api, history, func(ctx context.Context, in *historyInput) (*struct{ Body MessagePage }, error) {
		f := chat.MessageFilter{Limit: in.Limit}
		if in.hasBefore {
			f.Before = &in.Before
		}
		if in.hasAfter {
			f.After = &in.After
		}
		msgs, more, err := s.Rooms.FindMessages(ctx, principal(ctx).UserID, in.RoomID, f)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		if msgs == nil {
			msgs = []chat.Message{}
		}
		return &struct{ Body MessagePage }{MessagePage{Messages: msgs, HasMore: more}}, nil
	})
}

package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

// ticketKey holds, in a stream request's context, the ticket it
// authenticated with: still unused until useTicket.
type ticketKey struct{}

type ticketOutput struct {
	Body chat.StreamTicket
}

func (s *Server) registerTickets() {
	o := authed(op("createStreamTicket", http.MethodPost, "/v1/stream-tickets", "Get a single-use stream ticket", "Streams", http.StatusCreated,
		http.StatusServiceUnavailable))
	o.Description = "A ticket authenticates one event stream (`GET /v1/rooms/{room_id}/events` or `GET /v1/events`) as " +
		"`?ticket=<ticket>`, so a browser's EventSource URL need not carry the access token. It is single use (used up " +
		"only by a stream that opens), valid on any replica for `expires_in` seconds, and the stream it opens ends when " +
		"the access token that asked for it expires. EventSource would reconnect with the same, used URL: on `error`, " +
		"close it, get a new ticket and open a new EventSource with `?ticket=...&after=<last id seen>`."
	huma.Register(s.api, o, func(ctx context.Context, _ *struct{}) (*ticketOutput, error) {
		if s.Tickets == nil {
			return nil, s.problem(ctx, chat.Errorf(chat.EUnavailable, "stream tickets are unavailable"))
		}
		t, err := s.Tickets.MintStreamTicket(ctx, principal(ctx))
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &ticketOutput{Body: t}, nil
	})
}

// authenticateTicket authenticates a stream request by its ?ticket=
// without using the ticket up.
func (s *Server) authenticateTicket(ctx huma.Context, ticket string, next func(huma.Context)) {
	if s.Tickets == nil {
		s.unauthorized(ctx, "authentication unavailable")
		return
	}
	p, err := s.Tickets.CheckStreamTicket(ctx.Context(), ticket)
	if err != nil {
		if chat.ErrorCode(err) != chat.EUnauthenticated {
			_ = huma.WriteErr(s.api, ctx, http.StatusServiceUnavailable, "unavailable")
			return
		}
		s.unauthorized(ctx, chatMessage(err))
		return
	}
	next(huma.WithValue(huma.WithValue(ctx, principalKey{}, p), ticketKey{}, ticket))
}

// useTicket uses up the ticket a stream request authenticated with, if
// any. Streams call it at the point they are accepted, after every check
// that could refuse them, so a refused stream leaves its ticket valid;
// racing opens with one ticket: one wins, the others are 401.
func (s *Server) useTicket(ctx context.Context) error {
	ticket, ok := ctx.Value(ticketKey{}).(string)
	if !ok {
		return nil
	}
	if _, err := s.Tickets.UseStreamTicket(ctx, ticket); err != nil {
		return s.problem(ctx, err)
	}
	return nil
}

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

type userStreamInput struct {
	LastEventID string `header:"Last-Event-ID" maxLength:"512" pattern:"^[A-Za-z0-9_-]*$" doc:"Resume after this cursor (EventSource sends the last id on reconnect); wins over after."`
	After       string `query:"after" maxLength:"512" pattern:"^[A-Za-z0-9_-]*$" doc:"Resume after this cursor, the id of the last event seen (or the cursor of ready): the server replays what you missed in every room, then goes live."`
	AccessToken string `query:"access_token" doc:"The access token, for browser EventSource, which cannot set headers. The Authorization header wins when both are given. Prefer ticket: URLs end up in logs and history."`
	Ticket      string `query:"ticket" maxLength:"128" doc:"A single-use ticket from POST /v1/stream-tickets, in place of a token (the Authorization header wins over it, it wins over access_token). Used up only when the stream opens; used, expired or unknown: 401."`
}

// cursor returns the resume cursor (Last-Event-ID wins over after), with
// the field it came from; "" when none was given.
func (in *userStreamInput) cursor() (string, string) {
	if in.LastEventID != "" {
		return "header.Last-Event-ID", in.LastEventID
	}
	if in.After != "" {
		return "query.after", in.After
	}
	return "", ""
}

// userStreamEvents are the user stream's events: the room streams' durable
// ones (each holds room_id), its own ready, and reauth.
func userStreamEvents() []streamEvent {
	var evs []streamEvent
	for _, e := range streamEvents {
		switch e.name {
		case "ready":
			e = streamEvent{"ready", chat.UserReady{}, "Sent once, without id, when the replay is done and the stream is live (also when it started live); its cursor is the position then.", true}
		case "member.left":
			e.doc = "A user left or was removed. After the caller's own, that room's events stop; the stream goes on."
		case "room.deleted":
			e.doc = "The room was deleted; its events stop, the stream goes on."
		}
		evs = append(evs, e)
	}
	return evs
}

func (s *Server) registerUserStream() {
	o := authed(op("streamUserEvents", http.MethodGet, "/v1/events", "Stream the events of all your rooms (Server-Sent Events)", "Streams", http.StatusOK,
		http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable))
	o.Description = "One connection for every room the caller is a member of: every durable event of those rooms, " +
		"with the same data as the room streams. A room the caller joins or is added to joins the stream from the caller's " +
		"`member.joined` on; after the caller's own `member.left` that room's events stop, and the stream goes on.\n\n" +
		"`id:` is an opaque cursor, at most 512 characters of `[A-Za-z0-9_-]`. Resume with `Last-Event-ID` or " +
		"`?after=<cursor>` (the header wins): the server replays what the caller missed in every room, sends `ready` " +
		"`{cursor}`, then goes live, with no gap and no duplicate in any room, on any replica. Without a cursor the stream " +
		"starts live and sends `ready` first all the same. A malformed cursor, or one this deployment did not issue, is 422; " +
		"a cursor from ahead of the log starts live. Within a room, events come in `seq` order; across rooms, in no " +
		"particular order. Heartbeats, `retry:`, `reauth` and the end at shutdown are those of the room streams."
	o.Metadata = map[string]any{allowQueryToken: true}
	o.Responses = s.streamResponses(userStreamEvents(), &huma.Schema{Type: huma.TypeString, MaxLength: ptr(chat.MaxCursorLen),
		Pattern: "^[A-Za-z0-9_-]+$", Description: "The stream's cursor after this event: resume with it.", Examples: []any{"AdQFAQcMsR3pVtqKnS0xV0Q"}})
	huma.Register(s.api, o, func(ctx context.Context, in *userStreamInput) (*huma.StreamResponse, error) {
		p := principal(ctx)
		var cur *chat.UserCursor
		if field, text := in.cursor(); text != "" {
			c, err := s.Cursors.Decode(field, text)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			cur = &c
		}
		slot, err := s.streamSlot(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		// Until the stream's body owns the slot, any way out (an error, a
		// panic) gives it back.
		handedOff := false
		defer func() {
			if !handedOff {
				slot.Release()
			}
		}()
		st := &userStream{}
		feed, err := s.UserFeeds.OpenUserFeed(p.UserID, st.write)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		// The stream is accepted: only now is a ticket used up.
		if err := s.useTicket(ctx); err != nil {
			feed.Close()
			return nil, err
		}
		st.feed = feed
		handedOff = true
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			done := func() {
				feed.Close()
				slot.Release()
			}
			w, ok := hctx.BodyWriter().(http.ResponseWriter)
			if !ok {
				done()
				s.log.Error("stream: body writer is not an http.ResponseWriter")
				return
			}
			st.sseStream = newSSEStream(s, feed)
			s.serveStream(hctx, w, &st.sseStream, streamRun{
				open: func(ctx context.Context) bool { return st.open(ctx, p.ExpiresAt, cur) },
				live: st.run,
				done: done,
			})
		}}, nil
	})
}

func ptr[T any](v T) *T { return &v }

// userStream writes one user stream's frames; its feed decides what they
// are.
type userStream struct {
	sseStream
	feed chat.UserFeed
	ctx  context.Context
}

// open sends retry:, the replay and ready, and reports whether the
// stream goes on.
func (st *userStream) open(ctx context.Context, expires time.Time, cur *chat.UserCursor) bool {
	st.ctx = ctx
	if st.begin(expires) != nil {
		return false
	}
	ready, err := st.feed.Start(ctx, cur)
	if err != nil {
		st.failed(ctx, "replay", err)
		return false
	}
	data, _ := json.Marshal(chat.UserReady{Cursor: ready})
	if st.ready(data) != nil {
		return false
	}
	st.feed.GoLive() // ephemeral events from now on
	return true
}

// run is the live stream, until it ends.
func (st *userStream) run(ctx context.Context) {
	st.live(ctx, liveHooks{
		signals:   st.feed.Signals(),
		popSignal: st.feed.NextSignal,
		ready:     st.feed.Ready(),
		pop:       st.feed.Next,
		handle:    func(ev *chat.Event) error { return st.failed(ctx, "handle event", st.feed.Handle(ctx, ev)) },
		resync:    st.feed.Resync(),
		onResync: func() error {
			return st.failed(ctx, "rebase", st.feed.Rebase(ctx))
		},
		next: func() time.Duration {
			_, wait := st.feed.RebaseDue(time.Now())
			return max(wait, time.Millisecond)
		},
		onTimer: func() error {
			if due, _ := st.feed.RebaseDue(time.Now()); due {
				return st.failed(ctx, "rebase", st.feed.Rebase(ctx))
			}
			return nil
		},
	})
}

// failed logs an error that ends the stream (the client resumes with its
// last id, so nothing is lost), unless the stream simply ended.
func (st *userStream) failed(ctx context.Context, what string, err error) error {
	if err != nil && !errors.Is(err, errStreamEnd) && ctx.Err() == nil {
		st.srv.log.WarnContext(ctx, "user stream: "+what, "err", err)
	}
	return err
}

// write is the feed's emit: one frame, after checking the stream need not
// end first (a long replay must notice shutdown and expiry).
func (st *userStream) write(ev *chat.Event, cursor string) error {
	if err := st.check(st.ctx); err != nil {
		return err
	}
	return st.frame(cursor, ev)
}

package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

// Stream timing.
const (
	// retryMillis is the reconnect delay the first frame asks clients for.
	retryMillis = 1000
	// writeTimeout bounds one write (at most flushAt bytes) to a client; a
	// stalled client is cut off after it. The deadline is cleared between
	// writes, so it does not limit how long a stream may sit idle.
	writeTimeout = 5 * time.Second
	// replayPage is how many logged events one replay read fetches; with
	// 16 KB messages a page is 1.6 MB.
	replayPage = 100
)

type streamInput struct {
	RoomPath
	LastEventID int64  `header:"Last-Event-ID" minimum:"0" doc:"Resume after this seq (sent by EventSource on reconnect); wins over after."`
	After       int64  `query:"after" minimum:"0" doc:"Resume after this seq: the server replays every later event, then goes live. 0 replays the room from its start."`
	AccessToken string `query:"access_token" doc:"The access token, for browser EventSource, which cannot set headers. The Authorization header wins when both are given. Prefer ticket: URLs end up in logs and history."`
	Ticket      string `query:"ticket" maxLength:"128" doc:"A single-use ticket from POST /v1/stream-tickets, in place of a token (the Authorization header wins over it, it wins over access_token). Used up only when the stream opens; used, expired or unknown: 401."`

	cursor    int64
	hasCursor bool
}

// Resolve picks the resume cursor: Last-Event-ID wins over after.
func (in *streamInput) Resolve(ctx huma.Context) []error {
	// An empty value is no cursor, as Huma parses it.
	u := ctx.URL()
	switch {
	case ctx.Header("Last-Event-ID") != "":
		in.cursor, in.hasCursor = in.LastEventID, true
	case u.Query().Get("after") != "":
		in.cursor, in.hasCursor = in.After, true
	}
	return nil
}

// streamEvent documents one event a stream sends, with its data type.
type streamEvent struct {
	name string
	data any
	doc  string
	// noID: the event has no id: (ready, reauth and the ephemeral events).
	noID bool
}

// ephemeralDoc is what every ephemeral event's description ends with.
const ephemeralDoc = " Ephemeral: no `id:` (the resume point stays the last durable event's), never stored or replayed, " +
	"sent only after `ready`, never to the user it is about."

// streamEvents are the room stream's events.
var streamEvents = []streamEvent{
	{"message", chat.Message{}, "A message was posted. Sent with `event: message` (SSE's default type, so EventSource's onmessage fires for it).", false},
	{"member.joined", chat.MemberJoined{}, "A user joined or was added.", false},
	{"member.left", chat.MemberLeft{}, "A user left or was removed; a removed user's own stream ends after it.", false},
	{"room.updated", chat.RoomUpdated{}, "The room's name or topic changed.", false},
	{"room.deleted", chat.RoomDeleted{}, "The room was deleted; the stream ends.", false},
	{"message.edited", chat.MessageEdited{}, "A message was edited; data holds it after the edit.", false},
	{"message.deleted", chat.MessageDeleted{}, "A message was deleted; its text is erased from history and from every replay.", false},
	{"reaction.added", chat.ReactionAdded{}, "A member reacted to a message; count is the key's count after it.", false},
	{"reaction.removed", chat.ReactionRemoved{}, "A member took a reaction back; count is the key's count after it.", false},
	{"typing", chat.Typing{}, "A member is typing (POST /v1/rooms/{room_id}/typing): at most one per member and room every 2 s; " +
		"show it for a few seconds unless it comes again." + ephemeralDoc, true},
	{"member.read", chat.MemberRead{}, "A member's read marker moved (PUT /v1/rooms/{room_id}/read; posting moves the poster's " +
		"marker without it): a read receipt." + ephemeralDoc, true},
	{"presence", chat.Presence{}, "A member came online (opened their first stream, on any replica) or went offline (their last " +
		"stream has been closed for 3 s, or their replica died). On the user stream, once per user however many rooms you " +
		"share; for the state at connect, read the members' online field." + ephemeralDoc, true},
	{"ready", chat.Ready{}, "Sent once, without id, when the replay is done and the stream is live.", true},
	{"reauth", chat.Reauth{}, `Sent when the access token expires ({"reason":"token_expired"}); the stream ends. Reconnect with a fresh token and Last-Event-ID.`, true},
}

func (s *Server) registerStream() {
	o := authed(op("streamRoomEvents", http.MethodGet, "/v1/rooms/{room_id}/events", "Stream a room's events (Server-Sent Events)", "Streams", http.StatusOK,
		http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable))
	o.Description = "Members only. Replays every durable event after the cursor (Last-Event-ID, else after), " +
		"then sends `ready` and goes live, with no gap and no duplicate. Without a cursor the stream starts live. " +
		"Durable events carry `id: <seq>`. A `: ping` comment goes out every heartbeat interval. The stream ends when the " +
		"access token expires (after `reauth`), when the caller leaves or is removed (after their own `member.left`), " +
		"when the room is deleted, when the caller falls too far behind, and when the server shuts down: reconnect " +
		"with Last-Event-ID (or after=<last seq seen>) and nothing is missed."
	o.Metadata = map[string]any{allowQueryToken: true}
	o.Responses = s.streamResponses(streamEvents, &huma.Schema{Type: huma.TypeInteger, Description: "The event's seq."})
	huma.Register(s.api, o, func(ctx context.Context, in *streamInput) (*huma.StreamResponse, error) {
		p := principal(ctx)
		// Take the slot before the database is asked anything: a refused
		// stream costs the replica nothing more, and leaves a ticket unused.
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
		lastSeq, err := s.Rooms.CheckStream(ctx, p.UserID, in.RoomID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		// Start from the cursor, or live; a cursor past the end starts live.
		after := lastSeq
		if in.hasCursor && in.cursor < lastSeq {
			after = in.cursor
		}
		// Register before reading the replay, so nothing committed after
		// the read can slip past; duplicates are dropped by seq.
		sub, err := s.Subscriber.Subscribe(in.RoomID, p.UserID, after)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		// The stream is accepted: only now is a ticket used up.
		if err := s.useTicket(ctx); err != nil {
			sub.Close()
			return nil, err
		}
		handedOff = true
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			// Huma calls Body for every StreamResponse returned, so the
			// slot is given back however the stream ends.
			done := func() {
				sub.Close()
				slot.Release()
			}
			// humago's body writer is the http.ResponseWriter itself.
			w, ok := hctx.BodyWriter().(http.ResponseWriter)
			if !ok {
				done()
				s.log.Error("stream: body writer is not an http.ResponseWriter")
				return
			}
			st := &roomStream{sseStream: newSSEStream(s, sub), sub: sub,
				roomID: in.RoomID, userID: p.UserID, memberAt: lastSeq, lastSent: after}
			s.serveStream(hctx, w, &st.sseStream, streamRun{
				open: func(ctx context.Context) bool { return st.open(ctx, p.ExpiresAt) },
				live: st.run,
				done: done,
			})
		}}, nil
	})
}

// roomStream writes one room stream's frames; only its own goroutine writes.
type roomStream struct {
	sseStream
	sub    chat.Subscription
	roomID string
	userID string
	// memberAt is the room's last seq when membership was checked: the
	// user's own member.left events up to it were followed by a rejoin and
	// do not end the stream.
	memberAt int64
	lastSent int64
}

// open sends retry:, the replay and ready, and reports whether the
// stream goes on.
func (st *roomStream) open(ctx context.Context, expires time.Time) bool {
	if st.begin(expires) != nil || st.replay(ctx) != nil {
		return false
	}
	ready, _ := json.Marshal(chat.Ready{RoomID: st.roomID, LastSeq: st.lastSent})
	if st.ready(ready) != nil {
		return false
	}
	st.sub.GoLive() // ephemeral events from now on
	return true
}

// run is the live stream, until it ends.
func (st *roomStream) run(ctx context.Context) {
	st.live(ctx, liveHooks{ready: st.sub.Ready(), pop: st.sub.Next, handle: st.write,
		signals: st.sub.Signals(), popSignal: st.sub.NextSignal})
}

// replay sends the logged events after lastSent, page by page, and moves
// the subscription's position along so the hub does not queue (and count
// against it) events already sent.
func (st *roomStream) replay(ctx context.Context) error {
	for {
		if err := st.check(ctx); err != nil {
			return err
		}
		evs, err := st.srv.Events.ReadEvents(ctx, st.roomID, st.lastSent, replayPage)
		if err != nil {
			if ctx.Err() != nil {
				return err // the client went away (finish records it)
			}
			st.srv.log.WarnContext(ctx, "replay room events", "room_id", st.roomID, "err", err)
			return err
		}
		for i := range evs {
			if err := st.write(&evs[i]); err != nil {
				return err
			}
		}
		if err := st.flush(); err != nil {
			return err
		}
		st.sub.Advance(st.lastSent)
		if len(evs) < replayPage {
			return nil
		}
	}
}

// write buffers ev unless it was already sent. It returns errStreamEnd
// after an event that ends the stream.
func (st *roomStream) write(ev *chat.Event) error {
	if ev.Seq <= st.lastSent {
		return nil
	}
	st.lastSent = ev.Seq
	if err := st.frame(strconv.FormatInt(ev.Seq, 10), ev); err != nil {
		return err
	}
	if ev.Seq > st.memberAt && ev.Ends(st.userID) {
		st.ended(ev.EndReason())
		_ = st.flush()
		return errStreamEnd
	}
	return nil
}

// streamResponses documents a stream's 200: its headers and its frames,
// one schema per event, durable ones with an id of schema id.
func (s *Server) streamResponses(events []streamEvent, id *huma.Schema) map[string]*huma.Response {
	return map[string]*huma.Response{"200": {
		Description: "An event stream.",
		Headers: map[string]*huma.Param{
			"Cache-Control":     {Schema: &huma.Schema{Type: huma.TypeString, Examples: []any{"no-cache"}}},
			"X-Accel-Buffering": {Schema: &huma.Schema{Type: huma.TypeString, Examples: []any{"no"}}},
		},
		Content: map[string]*huma.MediaType{"text/event-stream": {Schema: s.streamSchema(events, id)}},
	}}
}

// streamSchema documents a stream as SSE frames, one schema per event.
func (s *Server) streamSchema(events []streamEvent, id *huma.Schema) *huma.Schema {
	reg := s.api.OpenAPI().Components.Schemas
	var frames []*huma.Schema
	for _, e := range events {
		data := reg.Schema(reflect.TypeOf(e.data), true, e.name)
		if e.name == "room.updated" {
			// Stream data is shared by every viewer: no read state.
			if sch := reg.SchemaFromRef(data.Ref); sch != nil {
				delete(sch.Properties, "last_read_seq")
				delete(sch.Properties, "unread_count")
			}
		}
		props := map[string]*huma.Schema{
			"event": {Type: huma.TypeString, Description: "The event name.", Enum: []any{e.name}},
			"data":  data,
		}
		required := []string{"event", "data"}
		if !e.noID {
			props["id"] = id
			required = append(required, "id")
		}
		frames = append(frames, &huma.Schema{Title: "Event " + e.name, Description: e.doc, Type: huma.TypeObject, Properties: props, Required: required})
	}
	return &huma.Schema{
		Title:       "Server-Sent Events",
		Description: "A text/event-stream; each item is one SSE frame. The first frame sets retry:. Comment frames (: ping) keep the connection alive.",
		Type:        huma.TypeArray,
		Items:       &huma.Schema{OneOf: frames},
	}
}

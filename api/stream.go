package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// StreamOptions tune a stream reader; the zero value is ready to use.
type StreamOptions struct {
	// After resumes after this id: a room's seq in decimal ("0" replays the
	// room from its start) or a user stream's cursor. "" starts live.
	After string
	// MinBackoff is the first reconnect delay (default: the server's
	// retry:, 1 s from Parley); it doubles on each failed attempt, up to
	// MaxBackoff (default 30 s), with jitter. A Retry-After on a 429 or
	// 503 is waited in full.
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout reconnects when nothing, not even a heartbeat, arrived
	// for this long (default 45 s: three of Parley's default heartbeats;
	// negative: never).
	IdleTimeout time.Duration
	// OnReconnect, if set, is told why the stream is reconnecting and how
	// long it waits first.
	OnReconnect func(err error, wait time.Duration)
}

// Errors a stream reports to OnReconnect.
var (
	// ErrStreamEnded: the server ended the stream (a shutdown, a slow
	// reader, the user's own member.left); the reader resumes.
	ErrStreamEnded = errors.New("parley: the server ended the stream")
	// ErrReauth: the stream's token expired (reauth); the reader gets a
	// fresh one and resumes at once.
	ErrReauth = errors.New("parley: the stream's access token expired")
	// ErrIdle: nothing arrived for IdleTimeout; the reader reconnects.
	ErrIdle = errors.New("parley: the stream went silent")
)

// Stream reads one of the event streams, resuming after the last event
// it yielded whenever the connection ends. Make one with RoomStream or
// UserStream and range over Events.
type Stream struct {
	api    *API
	roomID string // "" for the user stream
	opts   StreamOptions

	mu     sync.Mutex
	lastID string
}

// RoomStream reads GET /v1/rooms/{room_id}/events.
func (a *API) RoomStream(roomID string, opts StreamOptions) *Stream {
	return &Stream{api: a, roomID: roomID, opts: opts, lastID: opts.After}
}

// UserStream reads GET /v1/events, the caller's events from all their
// rooms.
func (a *API) UserStream(opts StreamOptions) *Stream {
	return &Stream{api: a, opts: opts, lastID: opts.After}
}

// LastID is the id to resume after: that of the last durable event
// yielded, or the position of the last ready.
func (s *Stream) LastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

func (s *Stream) setLastID(id string) {
	s.mu.Lock()
	s.lastID = id
	s.mu.Unlock()
}

// Events yields the stream's events in order, across reconnections:
// after a dropped connection, a server that ended the stream, a 5xx, a 429
// or 503 (waiting its Retry-After), it reconnects with backoff and
// Last-Event-ID; after reauth or a 401 it refreshes the token first.
//
// It ends when ctx ends or the loop breaks, without an error, leaving no
// goroutine behind; after room.deleted on a room stream, also without an
// error; and with one last (Event{}, err) when the stream cannot go on: a
// 403, 404 or 422 (the caller is not a member, the room is gone, the
// cursor is bad; an *Error), a token that cannot be refreshed, or a frame
// that does not decode.
func (s *Stream) Events(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		base := s.opts.MinBackoff
		failures := 0
		var stale string // a token to refresh before the next attempt
		refreshed := false
		for ctx.Err() == nil {
			tok, err := s.api.tokens.Token(ctx)
			if err == nil && stale != "" {
				tok, err = s.api.tokens.Refresh(ctx, stale)
				refreshed = true
			}
			stale = ""
			if err != nil {
				if ctx.Err() == nil {
					yield(Event{}, fmt.Errorf("stream: get an access token: %w", err))
				}
				return
			}
			resp, err := s.open(ctx, tok)
			var why error
			var wait time.Duration
			switch {
			case err != nil:
				why = err
			case resp.StatusCode == http.StatusOK:
				out := s.read(ctx, resp, yield)
				if out.retry > 0 && s.opts.MinBackoff == 0 {
					base = out.retry
				}
				if out.ready {
					failures, refreshed = 0, false
				}
				switch {
				case out.stop:
					return
				case out.err != nil:
					yield(Event{}, out.err)
					return
				case out.reauth:
					stale = tok
					why = ErrReauth
				default:
					why = out.ended
				}
			case resp.StatusCode == http.StatusUnauthorized && !refreshed:
				stale, why = tok, errorFromResponse(resp)
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
				e := errorFromResponse(resp)
				why, wait = e, e.RetryAfter
			default: // 403, 404, 422, and the 4xx that retrying cannot mend
				yield(Event{}, errorFromResponse(resp))
				return
			}
			if ctx.Err() != nil {
				return
			}
			if stale == "" {
				wait = max(wait, s.backoff(base, failures))
				failures++
			}
			if s.opts.OnReconnect != nil {
				s.opts.OnReconnect(why, wait)
			}
			if !sleep(ctx, wait) {
				return
			}
		}
	}
}

// open sends the stream request with tok and the resume position.
func (s *Stream) open(ctx context.Context, tok string) (*http.Response, error) {
	var req *http.Request
	var err error
	if s.roomID != "" {
		req, err = NewStreamRoomEventsRequest(s.api.server, s.roomID, nil)
	} else {
		req, err = NewStreamUserEventsRequest(s.api.server, nil)
	}
	if err != nil {
		return nil, err
	}
	req = req.WithContext(ctx)
	req.Header.Set("Accept", "text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if id := s.LastID(); id != "" {
		req.Header.Set("Last-Event-ID", id)
	}
	for _, ed := range s.api.editors {
		if err := ed(ctx, req); err != nil {
			return nil, err
		}
	}
	return s.api.raw.Do(req)
}

// readOutcome is how one connection's stream ended.
type readOutcome struct {
	stop   bool  // the loop broke, ctx ended, or the stream is over for good
	err    error // a terminal error
	reauth bool  // the token expired
	ready  bool  // ready was read: the connection worked
	ended  error // why the connection ended otherwise
	retry  time.Duration
}

// read yields one connection's events.
func (s *Stream) read(ctx context.Context, resp *http.Response, yield func(Event, error) bool) (out readOutcome) {
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		out.err = fmt.Errorf("stream: answer of type %q, want text/event-stream", resp.Header.Get("Content-Type"))
		return out
	}
	body := io.Reader(resp.Body)
	idle := s.opts.IdleTimeout
	if idle == 0 {
		idle = 45 * time.Second
	}
	var silent *idleReader
	if idle > 0 {
		silent = newIdleReader(resp.Body, idle)
		defer silent.stop()
		body = silent
	}
	r := newSSEReader(body)
	defer func() { out.retry = r.retry }()
	for {
		f, err := r.next()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				out.stop = true
			case silent != nil && silent.fired():
				out.ended = ErrIdle
			case errors.Is(err, io.EOF):
				out.ended = ErrStreamEnded
			default:
				out.ended = fmt.Errorf("stream: read: %w", err)
			}
			return out
		}
		ev := Event{Type: f.typ, ID: f.id, Data: json.RawMessage(f.data)}
		if ev.Payload, err = decodePayload(f.typ, []byte(f.data), s.roomID == ""); err != nil {
			out.err = err
			return out
		}
		if f.id != "" {
			s.setLastID(f.id)
		}
		switch p := ev.Payload.(type) {
		case *Ready:
			out.ready = true
			if p.LastSeq > 0 {
				s.setLastID(strconv.FormatInt(p.LastSeq, 10))
			}
		case *UserReady:
			out.ready = true
			if p.Cursor != "" {
				s.setLastID(p.Cursor)
			}
		}
		if !yield(ev, nil) {
			out.stop = true
			return out
		}
		switch {
		case f.typ == EventReauth:
			out.reauth = true
			return out
		case f.typ == EventRoomDeleted && s.roomID != "":
			out.stop = true
			return out
		}
	}
}

// backoff is the wait before reconnect attempt n (0 first) after failures.
func (s *Stream) backoff(base time.Duration, n int) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	limit := s.opts.MaxBackoff
	if limit <= 0 {
		limit = 30 * time.Second
	}
	d := base
	for range min(n, 30) {
		d *= 2
		if d >= limit {
			d = limit
			break
		}
	}
	// Half fixed, half random: replicas restarting do not get every
	// client back in the same millisecond.
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// idleReader closes the body when no bytes arrive for a while, which
// ends a Read blocked on a connection that went silent.
type idleReader struct {
	r     io.ReadCloser
	d     time.Duration
	timer *time.Timer
	mu    sync.Mutex
	fire  bool
}

func newIdleReader(r io.ReadCloser, d time.Duration) *idleReader {
	ir := &idleReader{r: r, d: d}
	ir.timer = time.AfterFunc(d, func() {
		ir.mu.Lock()
		ir.fire = true
		ir.mu.Unlock()
		r.Close()
	})
	return ir
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.d)
	}
	return n, err
}

func (ir *idleReader) fired() bool {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	return ir.fire
}

func (ir *idleReader) stop() { ir.timer.Stop() }

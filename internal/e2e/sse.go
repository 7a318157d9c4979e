package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/parley-chat/parley/internal/chat"
)

// Frame is one event read from a room stream.
type Frame struct {
	// ID is the frame's id: line (the event's seq); 0 for ready and reauth
	// and on user streams.
	ID int64
	// RawID is the id: line as sent (a user stream's cursor).
	RawID string
	Type  string // "message" for unnamed events
	Data  string
	// Pos is the frame's place in the stream, from 1.
	Pos int
}

// ephemeral reports whether an event type is one of the ephemeral events
// (typing, member.read, presence), which have no id and are never stored.
func ephemeral(typ string) bool { return chat.EphemeralType(chat.EventType(typ)) }

// Seq is the seq inside the frame's data.
func (f Frame) Seq() int64 {
	var v struct {
		Seq int64 `json:"seq"`
	}
	_ = json.Unmarshal([]byte(f.Data), &v)
	return v.Seq
}

// Stream is an open room event stream, parsed with go-sse. Frames carries
// the durable events, ready and reauth; Signals the ephemeral events, which
// interleave with them at any time after ready (a client that knows none of
// them ignores them, as the contract asks).
type Stream struct {
	Resp    *http.Response
	Frames  chan Frame
	Signals chan Frame
	// early counts ephemeral frames that came before the first ready (the
	// contract allows none).
	early  atomic.Int64
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

// StreamRequest builds the request for a room's event stream, or for the
// user stream (/v1/events) when roomID is "".
func (c *Client) StreamRequest(ctx context.Context, roomID, query string) *http.Request {
	url := c.Base + "/v1/rooms/" + roomID + "/events"
	if roomID == "" {
		url = c.Base + "/v1/events"
	}
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req
}

// OpenUserStream opens the caller's user stream (see OpenStream).
func (c *Client) OpenUserStream(tb testing.TB, query string, header http.Header) *Stream {
	tb.Helper()
	return c.OpenStream(tb, "", query, header)
}

// OpenStream opens a room's stream with the client's token; query is the
// raw query string (e.g. "after=0") and header holds extra headers. It
// fails the test unless the answer is 200 text/event-stream.
func (c *Client) OpenStream(tb testing.TB, roomID, query string, header http.Header) *Stream {
	tb.Helper()
	s, err := c.TryStream(roomID, query, header)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// TryStream is OpenStream without a test.
func (c *Client) TryStream(roomID, query string, header http.Header) (*Stream, error) {
	s, refused, err := c.TryStreamOrRefusal(roomID, query, header)
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, fmt.Errorf("stream: status %d, content type %q", refused.Status, refused.Header.Get("Content-Type"))
	}
	return s, nil
}

// TryStreamOrRefusal opens a stream like TryStream; when the answer is not
// an event stream it returns that answer, body read, instead.
func (c *Client) TryStreamOrRefusal(roomID, query string, header http.Header) (*Stream, *Response, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req := c.StreamRequest(ctx, roomID, query)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		defer cancel()
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return nil, nil, err
		}
		return nil, &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
	}
	s := &Stream{Resp: resp, Frames: make(chan Frame, 100000), Signals: make(chan Frame, 100000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.Frames)
		defer close(s.Signals)
		defer resp.Body.Close()
		pos, ready := 0, false
		for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
			if err != nil {
				s.err = err
				return
			}
			pos++
			f := Frame{Type: ev.Type, Data: ev.Data, Pos: pos}
			if f.Type == "" {
				f.Type = "message"
			}
			if f.Type != "ready" && f.Type != "reauth" {
				f.RawID = ev.LastEventID
				f.ID, _ = strconv.ParseInt(ev.LastEventID, 10, 64)
			}
			ready = ready || f.Type == "ready"
			if ephemeral(f.Type) {
				if !ready {
					s.early.Add(1)
				}
				s.Signals <- f
				continue
			}
			s.Frames <- f
		}
	}()
	return s, nil, nil
}

// Next returns the next frame, failing the test if none comes within d or
// the stream ends.
func (s *Stream) Next(tb testing.TB, d time.Duration) Frame {
	tb.Helper()
	select {
	case f, ok := <-s.Frames:
		if !ok {
			tb.Fatalf("stream ended: %v", s.err)
		}
		return f
	case <-time.After(d):
		tb.Fatalf("no frame within %s", d)
	}
	return Frame{}
}

// UntilReady reads frames up to and including ready and returns those
// before it.
func (s *Stream) UntilReady(tb testing.TB, d time.Duration) []Frame {
	tb.Helper()
	var fs []Frame
	for {
		f := s.Next(tb, d)
		if f.Type == "ready" {
			return fs
		}
		fs = append(fs, f)
	}
}

// WaitEnd waits until the server ends the stream and returns the frames
// read until then.
func (s *Stream) WaitEnd(tb testing.TB, d time.Duration) []Frame {
	tb.Helper()
	var fs []Frame
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-s.Frames:
			if !ok {
				return fs
			}
			fs = append(fs, f)
		case <-timeout:
			tb.Fatalf("stream still open after %s", d)
		}
	}
}

// EarlySignals is how many ephemeral frames came before the first ready.
func (s *Stream) EarlySignals() int64 { return s.early.Load() }

// Close closes the stream from the client side.
func (s *Stream) Close() {
	s.cancel()
	<-s.done
}

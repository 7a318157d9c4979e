package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// flushAt is how many buffered bytes a stream writes out at once: replays
// and bursts go out in pieces, so no stream holds a large buffer.
const flushAt = 64 << 10

// errStreamEnd says the stream has ended normally (a final event was sent,
// the token expired, the subscription or the request ended).
var errStreamEnd = errors.New("stream ended")

// sseStream is what room streams and user streams share: the buffered
// frame writer, the retry: and ready frames, heartbeats, the token's
// expiry and the live loop. Only the stream's own goroutine uses it.
type sseStream struct {
	srv    *Server
	out    streamOut
	buf    bytes.Buffer
	sub    ender
	done   <-chan struct{} // the subscription ended (shutdown, cut off)
	expiry *time.Timer
	// end is why the stream ended, once it has; the first reason found
	// wins.
	end chat.StreamEnd
}

// ender is what a stream's subscription (a room's, or a user's feed) says
// about its end.
type ender interface {
	Done() <-chan struct{}
	Err() error
}

func newSSEStream(s *Server, sub ender) sseStream {
	return sseStream{srv: s, sub: sub, done: sub.Done()}
}

// streamOut is where a stream's frames go: the response (respOut), or the
// connection of a detached stream (rawOut, detach.go).
type streamOut interface {
	// send writes p and flushes it to the client within writeTimeout.
	send(p []byte) error
}

// respOut writes a stream's body through net/http.
type respOut struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newRespOut(w http.ResponseWriter) respOut {
	return respOut{w: w, rc: http.NewResponseController(w)}
}

func (o respOut) send(p []byte) error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := o.w.Write(p); err != nil {
		return err
	}
	if err := o.rc.Flush(); err != nil {
		return err
	}
	// Clear the deadline while idle: over HTTP/2 a passed deadline resets
	// the stream even when nothing is being written.
	_ = o.rc.SetWriteDeadline(time.Time{})
	return nil
}

// ended records why the stream ends, unless a reason was found first.
func (st *sseStream) ended(why chat.StreamEnd) {
	if st.end == "" {
		st.end = why
	}
}

// subscriptionEnded records why the hub ended the subscription.
func (st *sseStream) subscriptionEnded() {
	switch err := st.sub.Err(); {
	case errors.Is(err, chat.ErrSlowConsumer):
		st.ended(chat.EndSlowConsumer)
	case errors.Is(err, chat.ErrShutdown):
		st.ended(chat.EndShutdown)
	}
}

// writeFailed records why a write failed: a client that stopped reading
// let the write deadline pass (it fell behind); any other failure is a
// connection the client closed.
func (st *sseStream) writeFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		st.ended(chat.EndSlowConsumer)
		return
	}
	st.ended(chat.EndClientGone)
}

// finish hands why the stream ended to the request's log line and the
// metrics. A stream that failed on a database error has no reason among
// the contract's; its warning was logged.
func (st *sseStream) finish(ctx context.Context) {
	if st.end == "" && ctx.Err() != nil {
		st.ended(chat.EndClientGone)
	}
	if info := requestInfoOf(ctx); info != nil {
		info.streamEnd = st.end
	}
}

// begin arms the expiry timer, which the caller stops, and sends the
// retry: frame.
func (st *sseStream) begin(expires time.Time) error {
	st.expiry = time.NewTimer(time.Until(expires))
	fmt.Fprintf(&st.buf, "retry: %d\n\n", retryMillis)
	return st.flush()
}

// ready sends the ready event, and lets go of a buffer a long replay grew.
func (st *sseStream) ready(data []byte) error {
	st.buf.Write(appendFrame(st.buf.AvailableBuffer(), "", "ready", data))
	if err := st.flush(); err != nil {
		return err
	}
	if st.buf.Cap() > flushAt {
		st.buf = bytes.Buffer{}
	}
	return nil
}

// frame buffers one durable event with its id, flushing every flushAt
// bytes.
func (st *sseStream) frame(id string, ev *chat.Event) error {
	// Every durable event names its type, message included (contract
	// v1.1), so each frame schema can require event.
	st.buf.Write(appendFrame(st.buf.AvailableBuffer(), id, string(ev.Type), ev.Data))
	if st.buf.Len() >= flushAt {
		return st.flush()
	}
	return nil
}

// appendFrame appends one SSE frame to b: the id: line (when id is not
// ""), the event: line and data. It is the one place frames are encoded,
// and no data can break out of its frame: data is JSON, which never holds
// a raw line break, but should any come (\n, \r or \r\n) each line goes
// into a data: line of its own, which a client joins back with \n. id and
// event are Parley's own (a seq or user cursor, an event type): a line
// break there would be a bug, and is dropped rather than sent.
func appendFrame(b []byte, id, event string, data []byte) []byte {
	if id != "" {
		b = append(b, "id: "...)
		b = appendLine(b, id)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = appendLine(b, event)
	b = append(b, "\ndata: "...)
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = append(b, data[:i]...)
		b = append(b, "\ndata: "...)
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// appendLine appends s without its line breaks.
func appendLine(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] != '\n' && s[i] != '\r' {
			b = append(b, s[i])
		}
	}
	return b
}

// ephemeral buffers one ephemeral event: no id, so EventSource keeps its
// last event id (the resume point) as it was.
func (st *sseStream) ephemeral(ev *chat.Event) {
	st.buf.Write(appendFrame(st.buf.AvailableBuffer(), "", string(ev.Type), ev.Data))
}

// liveHooks are a stream's parts of the live loop: its events and what to
// do with each, and for user streams the resync signal and a timer.
type liveHooks struct {
	ready  <-chan struct{}
	pop    func() (*chat.Event, bool)
	handle func(*chat.Event) error
	// resync, when not nil, wakes the loop for onResync.
	resync   <-chan struct{}
	onResync func() error
	// next, when set, says when to call onTimer next.
	next    func() time.Duration
	onTimer func() error
	// signals wakes the loop for ephemeral events, popped by popSignal.
	signals   <-chan struct{}
	popSignal func() (*chat.Event, bool)
}

// live runs the stream until it ends: heartbeats, the token's expiry (after
// reauth), the end of the request or the subscription, and each event
// through handle, flushing once per wake-up.
func (st *sseStream) live(ctx context.Context, h liveHooks) {
	heartbeat := time.NewTicker(st.srv.Heartbeat)
	defer heartbeat.Stop()
	var timer <-chan time.Time
	var t *time.Timer
	if h.next != nil {
		t = time.NewTimer(h.next())
		defer t.Stop()
		timer = t.C
	}
	// Read once: ctx.Done and the fields cost a call and loads on every
	// wake-up, and a hot room's streams wake for every event.
	gone, done, expired := ctx.Done(), st.done, st.expiry.C
	for {
		var err error
		select {
		case <-gone:
			st.ended(chat.EndClientGone)
			return
		case <-done:
			st.subscriptionEnded()
			return
		case <-expired:
			st.reauth()
			return
		case <-heartbeat.C:
			st.buf.WriteString(": ping\n\n")
		case <-h.ready:
			// Write everything queued, then flush once.
			err = st.handleQueued(h)
		case <-h.signals:
			for ev, ok := h.popSignal(); ok; ev, ok = h.popSignal() {
				st.ephemeral(ev)
			}
		case <-h.resync:
			err = h.onResync()
		case <-timer:
			err = h.onTimer()
			t.Reset(h.next())
		}
		if err != nil || st.flush() != nil {
			return
		}
	}
}

// handleQueued handles whatever is queued, without waiting.
func (st *sseStream) handleQueued(h liveHooks) error {
	for ev, ok := h.pop(); ok; ev, ok = h.pop() {
		if err := h.handle(ev); err != nil {
			return err
		}
	}
	return nil
}

// check reports errStreamEnd once the stream must end: the request or the
// subscription ended (shutdown, cut off), or the token expired.
func (st *sseStream) check(ctx context.Context) error {
	select {
	case <-ctx.Done():
		st.ended(chat.EndClientGone)
		return errStreamEnd
	case <-st.done:
		st.subscriptionEnded()
		return errStreamEnd
	case <-st.expiry.C:
		st.reauth()
		return errStreamEnd
	default:
		return nil
	}
}

// stop stops the stream's timer once it has ended.
func (st *sseStream) stop() {
	if st.expiry != nil {
		st.expiry.Stop()
	}
}

func (st *sseStream) reauth() {
	st.ended(chat.EndTokenExpired)
	st.buf.Write(appendFrame(st.buf.AvailableBuffer(), "", "reauth", []byte(`{"reason":"token_expired"}`)))
	_ = st.flush()
}

// flush writes the buffered frames within writeTimeout and flushes them.
func (st *sseStream) flush() error {
	if st.buf.Len() == 0 {
		return nil
	}
	if err := st.out.send(st.buf.Bytes()); err != nil {
		st.writeFailed(err)
		return err
	}
	st.buf.Reset()
	return nil
}

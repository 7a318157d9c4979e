package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Detached streams. An idle stream served the way net/http serves any
// request holds the connection's 4 KiB read buffer and 4 KiB write buffer,
// the request and its handler's goroutine, whose stack grew through the
// middleware, the authentication and the replay (about 19 KiB of stacks and
// 20 KiB of heap per idle stream, measured). Over HTTP/1.1 a stream
// therefore takes its connection over from net/http before the headers go
// out (Hijack), does its handshake (retry:, replay, ready) on the handler's
// goroutine, and then hands the live part to a goroutine of its own with a
// shallow stack, while the handler returns and net/http lets go of the
// rest. What the connection carries does not change: the same headers, a
// chunked body, the same frames. HTTP/2 streams cannot be taken over and
// stay on their handler.

// rawOut writes a detached stream's body to its connection: chunked, as
// net/http would, each send one write within writeTimeout. Its fields are
// scratch space, so a send allocates nothing.
type rawOut struct {
	conn net.Conn
	head [18]byte
	vec  [3][]byte
	bufs net.Buffers
}

// send writes p as one chunk, in one writev. The deadline is set before
// each write and not cleared after it: over HTTP/1.1 a deadline that
// passes while the connection is idle does nothing (only the next write,
// which sets a new one first, would see it), so one deadline call per send
// is enough where the response writer needs two.
func (o *rawOut) send(p []byte) error {
	head := strconv.AppendInt(o.head[:0], int64(len(p)), 16)
	o.vec = [3][]byte{append(head, '\r', '\n'), p, crlf}
	o.bufs = o.vec[:]
	_ = o.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := o.bufs.WriteTo(o.conn)
	o.vec, o.bufs = [3][]byte{}, nil // hold no frame while idle
	return err
}

var (
	crlf      = []byte("\r\n")
	lastChunk = []byte("0\r\n\r\n")
)

// end writes the last chunk and closes the connection.
func (o *rawOut) end() {
	_ = o.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, _ = o.conn.Write(lastChunk)
	_ = o.conn.Close()
}

// detached is a stream whose connection was taken over.
type detached struct {
	out *rawOut
	// ctx ends when the client closes the connection (or it fails), like
	// a request's context does; cancel ends it.
	ctx    context.Context
	cancel context.CancelFunc
}

// detach takes the stream's connection over from net/http and writes the
// status line and w's headers, or reports false when the connection cannot
// be taken over (HTTP/2), leaving w untouched. The returned context keeps
// ctx's values but not its cancellation, which net/http fires when the
// handler returns; it ends instead when the client goes away.
func (s *Server) detach(ctx context.Context, w http.ResponseWriter) (*detached, bool) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	// The connection's own buffers stay with net/http (and are freed with
	// it); a client sends nothing after a stream's request, and whatever
	// it does send is read and dropped below.
	d := &detached{out: &rawOut{conn: conn}}
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if brw.Reader.Buffered() > 0 {
		_, _ = brw.Reader.Discard(brw.Reader.Buffered())
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h := w.Header()
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Transfer-Encoding", "chunked")
	// The connection ends with the stream: say so, so no client waits to
	// reuse it.
	h.Set("Connection", "close")
	_ = h.Write(&head)
	head.WriteString("\r\n")
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(head.Bytes()); err != nil {
		d.cancel()
		_ = conn.Close()
		return d, true // the stream's first write fails and ends it
	}
	_ = conn.SetWriteDeadline(time.Time{})
	go d.watch()
	return d, true
}

// watch reads the connection until it fails or closes (the client went
// away, a dead peer timed out, or the stream closed it), then ends the
// context. Its goroutine's stack stays minimal.
func (d *detached) watch() {
	var b [16]byte
	for {
		if _, err := d.out.conn.Read(b[:]); err != nil {
			d.cancel()
			return
		}
	}
}

// detachedStreams counts the streams running on goroutines of their own,
// so shutdown can wait for them: net/http forgets a connection it handed
// over.
type detachedStreams struct {
	wg sync.WaitGroup
}

// go runs f on a goroutine of its own, counted, recovering a panic the
// way the request's recoverer would.
func (s *Server) goDetached(f func()) {
	s.detachedStreams.wg.Add(1)
	go func() {
		defer s.detachedStreams.wg.Done()
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic in stream", "panic", v)
			}
		}()
		f()
	}()
}

// WaitStreams waits until every detached stream has ended, or ctx ends.
// Streams end when the hub closes their subscriptions (at shutdown), when
// their clients go away, and when their tokens expire.
func (s *Server) WaitStreams(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.detachedStreams.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("streams still open")
	}
}

// streamRun is a stream's life in two parts: open sends retry:, the
// replay and ready, and reports whether the stream goes on; live runs it
// until it ends. done releases what the stream held (its subscription,
// its slot) once it has ended.
type streamRun struct {
	open func(ctx context.Context) bool
	live func(ctx context.Context)
	done func()
}

// serveStream runs st: detached over HTTP/1.1 (the handshake on the
// handler's goroutine, the live part on one of its own, the request
// logged when the stream ends), on the handler otherwise.
func (s *Server) serveStream(hctx huma.Context, w http.ResponseWriter, st *sseStream, run streamRun) {
	ctx := hctx.Context()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	info := requestInfoOf(ctx)
	var d *detached
	if v := hctx.Version(); info != nil && info.finish != nil && v.ProtoMajor == 1 && v.ProtoMinor == 1 {
		d, _ = s.detach(ctx, w)
	}
	if d == nil {
		defer run.done()
		hctx.SetStatus(http.StatusOK)
		st.out = newRespOut(w)
		if run.open(ctx) {
			run.live(ctx)
		}
		st.stop()
		st.finish(ctx)
		return
	}
	info.detached = true
	st.out = d.out
	end := func() {
		st.stop()
		st.finish(d.ctx)
		d.out.end()
		d.cancel()
		run.done()
		info.finish(http.StatusOK)
	}
	if !run.open(d.ctx) {
		end()
		return
	}
	// Live, the stream holds no buffer until it has something to send.
	st.buf = bytes.Buffer{}
	s.goDetached(func() {
		defer end()
		run.live(d.ctx)
	})
}

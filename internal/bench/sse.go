package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// A stream is one open SSE connection and what it has received. Many
// thousands run in one process, so it is lean: one goroutine, a raw TCP
// connection with a small buffered reader under Go's chunked decoder, and
// a line reader over the body; no http.Transport (which would add two
// goroutines and two buffers per connection).
type stream struct {
	room    int
	replica int

	conn net.Conn
	body *bufio.Reader

	// startSeq is the room's last seq when the stream went live; lastSeq
	// the last seq received (read by the drain check while the stream runs).
	startSeq int64
	lastSeq  atomic.Int64
	finished atomic.Bool
	// Written by the stream's goroutine, read once it has finished.
	received   int64
	lost       int64
	duplicated int64
	disordered int64
	ended      error
}

// errOpen is an answer other than 200 to a stream request.
type errOpen struct{ status int }

func (e errOpen) Error() string { return "open: status " + strconv.Itoa(e.status) }

// openStream connects to base (http only), asks for path with token,
// checks the answer and reads up to the ready event.
func openStream(ctx context.Context, d *dialer, base, path, token, auth string) (*stream, int64, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, 0, fmt.Errorf("replica url: %w", err)
	}
	if u.Scheme != "http" {
		return nil, 0, fmt.Errorf("replica url %s: streams need http://", base)
	}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, 0, fmt.Errorf("open: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	// Bound the opening; the live stream has no deadline.
	if dl, has := ctx.Deadline(); has {
		_ = conn.SetDeadline(dl)
	}
	target, header := path, ""
	switch auth {
	case "header":
		header = "Authorization: Bearer " + token + "\r\n"
	default:
		sep := "?"
		if bytes.ContainsRune([]byte(path), '?') {
			sep = "&"
		}
		target += sep + "access_token=" + url.QueryEscape(token)
	}
	req := "GET " + target + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n" + header + "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, 0, fmt.Errorf("open: %w", err)
	}
	// The chunked decoder reads chunk headers through this reader and
	// bodies straight into the line reader's buffer.
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("open: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, errOpen{resp.StatusCode}
	}
	s := &stream{conn: conn, body: bufio.NewReaderSize(resp.Body, 4096)}
	// Read up to ready: retry:, then (starting live) nothing durable.
	var f frame
	for {
		if err := s.next(&f); err != nil {
			return nil, 0, fmt.Errorf("open: before ready: %w", err)
		}
		if string(f.event) == "ready" {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	ok = true
	// A room stream's ready carries the room's last seq; a user stream's
	// only a cursor (0 here).
	return s, intAfter(f.data, `"last_seq":`), nil
}

// frame is one SSE event; its slices are reused from frame to frame.
type frame struct {
	event, data []byte
	// long holds a data line longer than the reader's buffer.
	long []byte
}

// next reads the next event (comments and retry: are skipped).
func (s *stream) next(f *frame) error {
	f.event, f.data = f.event[:0], f.data[:0]
	seen := false
	for {
		line, err := s.body.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it.
			f.long = append(f.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = s.body.ReadSlice('\n')
				f.long = append(f.long, line...)
			}
			line = f.long
		}
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if seen {
				return nil
			}
		case line[0] == ':':
		default:
			seen = true
			name, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(name) {
			case "event":
				f.event = append(f.event, value...)
			case "data":
				if len(f.data) > 0 {
					f.data = append(f.data, '\n')
				}
				f.data = append(f.data, value...)
			}
		}
	}
}

// run reads events until the connection ends, checking each durable one
// against the room's order and timing each message of ours.
func (s *stream) run(st *stats) {
	defer s.finished.Store(true)
	var f frame
	last := s.startSeq
	for {
		if err := s.next(&f); err != nil {
			s.ended = err
			return
		}
		now := time.Now()
		if string(f.event) == "reauth" {
			s.ended = errors.New("ended by reauth")
			return
		}
		seq := intAfter(f.data, `"seq":`)
		if seq == 0 {
			continue // ephemeral: typing, presence, read markers
		}
		switch {
		case seq == last:
			s.duplicated++
			continue
		case seq < last:
			s.disordered++
			continue
		case seq > last+1:
			s.lost += seq - last - 1
		}
		last = seq
		s.lastSeq.Store(seq)
		s.received++
		st.deliveries.Add(1)
		if sent := intAfter(f.data, `"body":"t=`); sent > 0 {
			st.delivery.Observe(now.Sub(time.Unix(0, sent)))
		}
		if string(f.event) == "room.deleted" {
			s.ended = errors.New("ended by room.deleted")
			return
		}
	}
}

// intAfter parses the decimal integer right after the first key in data,
// or 0 if there is none.
func intAfter(data []byte, key string) int64 {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return 0
	}
	var n int64
	for _, c := range data[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// dialer spreads connections over local source addresses (127.0.0.x), so
// many thousands of them to one replica do not run out of ephemeral ports.
type dialer struct {
	addrs []net.Addr
	next  atomic.Uint64
}

func newDialer(sources []string) (*dialer, error) {
	d := &dialer{}
	for _, s := range sources {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("source address %q: not an IP address", s)
		}
		d.addrs = append(d.addrs, &net.TCPAddr{IP: ip})
	}
	return d, nil
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}
	if len(d.addrs) > 0 {
		nd.LocalAddr = d.addrs[d.next.Add(1)%uint64(len(d.addrs))]
	}
	return nd.DialContext(ctx, network, addr)
}

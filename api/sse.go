package api

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
	"time"
)

// maxFrameBytes bounds one line of a stream: a message of 4000 four-byte
// characters, JSON-escaped, fits many times over.
const maxFrameBytes = 1 << 20

// sseFrame is one dispatched Server-Sent Event.
type sseFrame struct {
	typ   string
	id    string // the frame's own id: field, "" if it had none
	data  string
	hasID bool
}

// sseReader parses text/event-stream as the HTML standard describes it.
type sseReader struct {
	sc *bufio.Scanner
	// lastID is the last id: seen, as EventSource keeps it.
	lastID string
	// retry is the last retry: seen, 0 if none.
	retry time.Duration
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxFrameBytes)
	sc.Split(scanLines)
	return &sseReader{sc: sc}
}

// next returns the next event; io.EOF when the stream ends cleanly.
func (r *sseReader) next() (sseFrame, error) {
	var f sseFrame
	var data strings.Builder
	hasData := false
	for r.sc.Scan() {
		line := r.sc.Text()
		if line == "" {
			if !hasData {
				f, data = sseFrame{}, strings.Builder{}
				continue
			}
			f.data = data.String()
			if f.typ == "" {
				f.typ = EventMessage
			}
			return f, nil
		}
		if line[0] == ':' {
			continue // a comment: the heartbeat
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			f.typ = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				f.id, f.hasID, r.lastID = value, true, value
			}
		case "retry":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 && strings.Trim(value, "0123456789") == "" {
				r.retry = time.Duration(n) * time.Millisecond
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseFrame{}, err
	}
	return sseFrame{}, io.EOF // an unfinished frame is dropped, as EventSource does
}

// scanLines splits at CRLF, LF or CR, the three line ends SSE allows.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	i := bytes.IndexAny(data, "\r\n")
	if i < 0 {
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	}
	if data[i] == '\n' {
		return i + 1, data[:i], nil
	}
	// A CR: part of a CRLF if an LF follows.
	if i+1 < len(data) {
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	}
	if atEOF {
		return i + 1, data[:i], nil
	}
	return 0, nil, nil // wait to see whether an LF follows
}

package httpapi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkStreamSend measures sending one message frame to a stream's
// client over loopback TCP, as the live loop does for each wake-up: through
// net/http's response writer (out=response: write, flush, two deadline
// calls), or on a detached stream's own connection (out=detached: one
// writev of the chunk, one deadline call). The client reads and discards.
func BenchmarkStreamSend(b *testing.B) {
	frame := []byte("id: 42\nevent: message\ndata: " +
		`{"id":"9b2f0c57-5c1e-4c43-a8c5-0b8f3b8f9a11","room_id":"0d4c1b9e-7d7a-4bb1-8f0e-2e4b7f1c6d21","seq":42,` +
		`"author":{"id":"5f1f8d2a-3c4b-4e6f-9a7b-1c2d3e4f5a6b","username":"ada","display_name":"Ada"},` +
		`"body":"hello, room","created_at":"2026-01-01T12:00:00.123456Z","reactions":[]}` + "\n\n")
	b.Run("out=response", func(b *testing.B) {
		ready := make(chan streamOut)
		finished := make(chan struct{})
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			ready <- newRespOut(w)
			<-finished
		})}
		ln := listen(b)
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		conn := dialDiscard(b, ln.Addr().String(), true)
		defer conn.Close()
		out := <-ready
		benchSend(b, out, frame)
		close(finished)
	})
	b.Run("out=detached", func(b *testing.B) {
		ln := listen(b)
		defer ln.Close()
		accepted := make(chan net.Conn)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		conn := dialDiscard(b, ln.Addr().String(), false)
		defer conn.Close()
		c := <-accepted
		defer c.Close()
		benchSend(b, &rawOut{conn: c}, frame)
	})
}

func benchSend(b *testing.B, out streamOut, frame []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := out.send(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// dialDiscard connects to addr, sends a stream request when request is
// set, and reads and drops whatever comes back until the connection ends.
func dialDiscard(b *testing.B, addr string, request bool) net.Conn {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	if request {
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			b.Fatal(err)
		}
	}
	go func() { _, _ = io.Copy(io.Discard, bufio.NewReader(conn)) }()
	return conn
}

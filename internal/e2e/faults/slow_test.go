package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// TestSlowDatabase holds a room's row lock from another session, as a stuck
// transaction would: a post to the room is answered 503 with Retry-After
// once the database call's deadline passes, a client that gives up first
// is not logged as an error, and once the lock goes the retry is stored.
func TestSlowDatabase(t *testing.T) {
	c := e2e.NewCluster(t, fmt.Sprintf("PARLEY_DB_TIMEOUT=%s", dbTimeout))
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "slow", chat.Public)
	lock := e2e.MustConnect(t, c.DatabaseURL)
	tx, err := lock.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE`, room.ID); err != nil {
		t.Fatal(err)
	}
	post := map[string]string{"body": "stuck", "client_id": "stuck-1"}

	start := time.Now()
	resp := alice.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/messages", post)
	took := time.Since(start)
	resp.MustProblem(t, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v", resp.Header)
	}
	if took < dbTimeout || took > attemptBound {
		t.Fatalf("answered after %s, want about the database deadline %s", took, dbTimeout)
	}

	// A client that gives up before the deadline.
	ctx, cancel := context.WithTimeout(t.Context(), dbTimeout/4)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+"/v1/rooms/"+room.ID+"/messages", strings.NewReader(`{"body":"gone","client_id":"gone-1"}`))
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the client gave up, yet got %d", resp.StatusCode)
	}

	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp = alice.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/messages", post)
	if resp.Status != http.StatusCreated {
		t.Fatalf("retry once the lock went: %d %s, want 201 (the 503 stored nothing)", resp.Status, resp.Body)
	}
	// The gave-up request is logged as canceled (499), at no error level.
	deadline := time.Now().Add(wait)
	for !strings.Contains(r.Log(), `"status":499`) {
		if time.Now().After(deadline) {
			t.Fatalf("no request logged with status 499:\n%s", r.Log())
		}
		time.Sleep(20 * time.Millisecond) // the log line follows the request's end
	}
	if strings.Contains(r.Log(), `"level":"ERROR"`) {
		t.Fatalf("a slow database or a client that went away was logged as an error:\n%s", r.Log())
	}
}

// readTimeout is the replicas' header and body read bound in
// TestSlowLoris.
const readTimeout = time.Second

// TestSlowLoris trickles a request's headers, and another's body, a byte at
// a time: each is cut off within about the read bound, while streams
// opened before them stay open and live well past it, and a keep-alive
// connection idle past the bound still serves its next request.
func TestSlowLoris(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_READ_HEADER_TIMEOUT="+readTimeout.String(), "PARLEY_READ_TIMEOUT="+readTimeout.String(), "PARLEY_HEARTBEAT=300ms")
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "loris", chat.Public)
	roomStream := alice.OpenStream(t, room.ID, "", nil)
	roomStream.UntilReady(t, wait)
	userStream := alice.OpenUserStream(t, "", nil)
	userStream.UntilReady(t, wait)
	opened := time.Now()
	addr := strings.TrimPrefix(r.URL, "http://")

	t.Run("Headers", func(t *testing.T) {
		head := "POST /v1/rooms/" + room.ID + "/messages HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer " + alice.Token + "\r\n" +
			strings.Repeat("X-Padding: trickle\r\n", 100)
		cut := trickle(t, addr, head, "")
		if cut > readTimeout+3*time.Second {
			t.Fatalf("headers trickled for %s before the cut, want about %s", cut, readTimeout)
		}
	})

	t.Run("Body", func(t *testing.T) {
		body := `{"body":"` + strings.Repeat("x", 200) + `"}`
		head := fmt.Sprintf("POST /v1/rooms/%s/messages HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			room.ID, alice.Token, len(body))
		cut := trickle(t, addr, head, body)
		if cut > readTimeout+3*time.Second {
			t.Fatalf("body trickled for %s before the cut, want about %s", cut, readTimeout)
		}
	})

	t.Run("KeepAliveIdle", func(t *testing.T) {
		reused := false
		hc := &http.Client{Transport: &http.Transport{}}
		defer hc.CloseIdleConnections()
		cl := *alice
		cl.HTTP = hc
		for i := range 2 {
			if i == 1 {
				time.Sleep(readTimeout + 500*time.Millisecond) // idle past the body's read bound
			}
			ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }})
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+"/v1/rooms/"+room.ID+"/messages", strings.NewReader(fmt.Sprintf(`{"body":"keep-alive %d"}`, i)))
			req.Header.Set("Authorization", "Bearer "+alice.Token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("post %d on a kept-alive connection: %d", i, resp.StatusCode)
			}
		}
		if !reused {
			t.Fatal("the second post did not reuse the connection")
		}
	})

	if lived := time.Since(opened); lived < 2*readTimeout {
		t.Fatalf("streams lived %s, want past the read bounds", lived)
	}
	msg := alice.MustPost(t, room.ID, "still live")
	for _, s := range []*e2e.Stream{roomStream, userStream} {
		for f := s.Next(t, wait); f.Type != "message" || !strings.Contains(f.Data, msg.ID); f = s.Next(t, wait) {
		}
	}
	if strings.Contains(r.Log(), `"level":"ERROR"`) {
		t.Fatalf("slow clients were logged as errors:\n%s", r.Log())
	}
}

// trickle sends head then body to addr one byte every 50 ms, stopping when
// the server cuts the connection off, and returns how long the request
// had been trickling by then. The cut must come before the request is
// whole: the connection closes, or the server answers 408 (a trickled
// body) or 400 or 408 (trickled headers).
func trickle(t *testing.T, addr, head, body string) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	answered := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- "closed: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}()
	// The headers go at once when the body trickles.
	if body != "" {
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		head = ""
	}
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	rest := head + body
	for i := 0; ; i++ {
		select {
		case got := <-answered:
			cut := time.Since(start)
			if body != "" && !strings.HasPrefix(got, "408 application/problem+json") {
				t.Fatalf("trickled body answered %q, want a 408 problem", got)
			}
			// net/http itself answers headers it could not read in time
			// (400 or 408 in text/plain, before any handler) or closes.
			if body == "" && !strings.HasPrefix(got, "closed") && !strings.HasPrefix(got, "408") && !strings.HasPrefix(got, "400") {
				t.Fatalf("trickled headers answered %q, want a 400 or 408 or the connection closed", got)
			}
			t.Logf("cut off after %s (%d of %d bytes): %.60s", cut.Round(time.Millisecond), i, len(rest), got)
			return cut
		case <-tick.C:
			if i >= len(rest) {
				t.Fatalf("the whole request trickled in over %s without a cut", time.Since(start))
			}
			if _, err := conn.Write([]byte{rest[i]}); err != nil {
				cut := time.Since(start)
				t.Logf("cut off after %s (%d of %d bytes): write: %v", cut.Round(time.Millisecond), i, len(rest), err)
				return cut
			}
		}
	}
}

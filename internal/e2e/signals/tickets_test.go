// Package signals tests stream tickets and the ephemeral events (typing,
// read receipts) end to end, over two replicas of one database.
package signals

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

const wait = 20 * time.Second

// mustTicket mints a stream ticket for c.
func mustTicket(tb testing.TB, c *e2e.Client) chat.StreamTicket {
	tb.Helper()
	resp := c.Do(tb, http.MethodPost, "/v1/stream-tickets", nil)
	if resp.Status != http.StatusCreated {
		tb.Fatalf("mint ticket: %d %s", resp.Status, resp.Body)
	}
	var t chat.StreamTicket
	resp.JSON(tb, &t)
	if t.Ticket == "" {
		tb.Fatalf("empty ticket: %s", resp.Body)
	}
	return t
}

// anonymous is c without its token: what a browser's EventSource sends.
func anonymous(c *e2e.Client, base string) *e2e.Client {
	cp := *c.As(base)
	cp.Token = ""
	return &cp
}

// openRaw opens a stream (roomID "" for the user stream) and returns the
// answer: the stream's frames when it is 200, the problem otherwise.
func openRaw(tb testing.TB, c *e2e.Client, roomID, query string) (*e2e.Stream, *e2e.Response) {
	tb.Helper()
	s, err := c.TryStream(roomID, query, nil)
	if err == nil {
		tb.Cleanup(s.Close)
		return s, nil
	}
	// Not a stream: ask again as a plain request to read the problem. A
	// refused open never uses a ticket up, so the answer is the same.
	req := c.StreamRequest(context.Background(), roomID, query)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		body.WriteString(string(buf[:n]))
		if err != nil {
			break
		}
	}
	return nil, &e2e.Response{Status: resp.StatusCode, Header: resp.Header, Body: []byte(body.String())}
}

func TestStreamTickets(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_STREAM_TICKET_TTL=10s")
	r1, r2 := c.MustStart(t), c.MustStart(t)
	ana := e2e.MustRegister(t, r1.URL, "ana")
	bob := e2e.MustRegister(t, r1.URL, "bob")
	ana.HTTP, bob.HTTP = http.DefaultClient, http.DefaultClient
	anaRoom := ana.MustCreateRoom(t, "ana-only", chat.Private)
	bobRoom := bob.MustCreateRoom(t, "bob-only", chat.Private)
	var minted []string

	t.Run("SingleUseOnAnyReplica", func(t *testing.T) {
		for _, roomID := range []string{anaRoom.ID, ""} {
			tk := mustTicket(t, ana)
			minted = append(minted, tk.Ticket)
			if tk.ExpiresIn < 1 || tk.ExpiresIn > 10 {
				t.Fatalf("expires_in %d, want 1-10", tk.ExpiresIn)
			}
			// Minted on r1, used on r2.
			s, _ := openRaw(t, anonymous(ana, r2.URL), roomID, "ticket="+tk.Ticket)
			if s == nil {
				t.Fatalf("room %q: ticket refused", roomID)
			}
			s.UntilReady(t, wait)
			for _, r := range []*e2e.Replica{r1, r2} {
				_, resp := openRaw(t, anonymous(ana, r.URL), roomID, "ticket="+tk.Ticket)
				if resp == nil {
					t.Fatalf("room %q: a used ticket opened a second stream", roomID)
				}
				resp.MustProblem(t, http.StatusUnauthorized)
			}
		}
	})

	t.Run("ErrUnknown", func(t *testing.T) {
		_, resp := openRaw(t, anonymous(ana, r1.URL), "", "ticket=not-a-ticket")
		if resp == nil {
			t.Fatal("an unknown ticket opened a stream")
		}
		resp.MustProblem(t, http.StatusUnauthorized)
	})

	t.Run("RacingUse", func(t *testing.T) {
		tk := mustTicket(t, ana)
		minted = append(minted, tk.Ticket)
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		opened, refused := 0, 0
		for i := range n {
			base := []string{r1.URL, r2.URL}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := anonymous(ana, base).TryStream(anaRoom.ID, "ticket="+tk.Ticket, nil)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					refused++
					return
				}
				opened++
				s.Close()
			}()
		}
		wg.Wait()
		if opened != 1 || refused != n-1 {
			t.Fatalf("%d opened, %d refused; want 1 and %d", opened, refused, n-1)
		}
	})

	t.Run("WrongUser", func(t *testing.T) {
		// Ana's ticket is Ana: Bob's private room is not found for her,
		// and that refusal leaves the ticket valid for her own room.
		tk := mustTicket(t, ana)
		minted = append(minted, tk.Ticket)
		_, resp := openRaw(t, anonymous(ana, r2.URL), bobRoom.ID, "ticket="+tk.Ticket)
		if resp == nil {
			t.Fatal("Ana's ticket opened Bob's private room")
		}
		resp.MustProblem(t, http.StatusNotFound)
		s, _ := openRaw(t, anonymous(ana, r2.URL), anaRoom.ID, "ticket="+tk.Ticket)
		if s == nil {
			t.Fatal("a refused open used the ticket up")
		}
		s.UntilReady(t, wait)
	})

	t.Run("HeaderWins", func(t *testing.T) {
		// Bob's header with Ana's ticket is Bob, and leaves the ticket
		// unused.
		tk := mustTicket(t, ana)
		minted = append(minted, tk.Ticket)
		s, _ := openRaw(t, bob.As(r2.URL), bobRoom.ID, "ticket="+tk.Ticket)
		if s == nil {
			t.Fatal("Bob's header did not win over Ana's ticket")
		}
		s.UntilReady(t, wait)
		s2, _ := openRaw(t, anonymous(ana, r1.URL), anaRoom.ID, "ticket="+tk.Ticket)
		if s2 == nil {
			t.Fatal("a stream authenticated by header used the ticket up")
		}
		s2.UntilReady(t, wait)
	})

	t.Run("KeptOutOfLogs", func(t *testing.T) {
		logs := r1.Log() + r2.Log()
		if !strings.Contains(logs, "/v1/rooms/"+anaRoom.ID+"/events") {
			t.Fatalf("the stream requests were not logged at all:\n%s", logs)
		}
		for _, tk := range minted {
			if strings.Contains(logs, tk) {
				t.Fatalf("ticket %s is in a replica's log", tk)
			}
		}
	})
}

func TestStreamTicketExpiry(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_STREAM_TICKET_TTL=1s")
	r1, r2 := c.MustStart(t), c.MustStart(t)
	ana := e2e.MustRegister(t, r1.URL, "ana")
	ana.HTTP = http.DefaultClient
	room := ana.MustCreateRoom(t, "room", chat.Public)
	tk := mustTicket(t, ana)
	// Await the ticket's expiry by the database's clock, which is the one
	// replicas judge it by.
	conn := e2e.MustConnect(t, c.DatabaseURL)
	deadline := time.Now().Add(wait)
	for {
		var live bool
		if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM stream_tickets WHERE expires_at > now())`).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if !live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ticket did not expire")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, resp := openRaw(t, anonymous(ana, r2.URL), room.ID, "ticket="+tk.Ticket)
	if resp == nil {
		t.Fatal("an expired ticket opened a stream")
	}
	resp.MustProblem(t, http.StatusUnauthorized)
}

func TestTicketStreamEndsWithItsToken(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_ACCESS_TTL=4s")
	r1, r2 := c.MustStart(t), c.MustStart(t)
	ana := e2e.MustRegister(t, r1.URL, "ana")
	ana.HTTP = http.DefaultClient
	room := ana.MustCreateRoom(t, "room", chat.Public)
	tk := mustTicket(t, ana)
	s, _ := openRaw(t, anonymous(ana, r2.URL), room.ID, "ticket="+tk.Ticket)
	if s == nil {
		t.Fatal("ticket refused")
	}
	s.UntilReady(t, wait)
	frames := s.WaitEnd(t, wait)
	if len(frames) == 0 || frames[len(frames)-1].Type != "reauth" {
		t.Fatalf("stream ended with %+v, want reauth last", frames)
	}
}

// Package rooms tests rooms, membership and messages end to end: real
// `parley serve` processes on a real database, spoken to over HTTP, with
// the room event log checked directly in Postgres.
package rooms

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// env is one top-level test's cluster, replica and database connection.
type env struct {
	c    *e2e.Cluster
	r    *e2e.Replica
	conn *pgx.Conn
}

// MustEnv starts a cluster with one replica and connects to its database.
func MustEnv(tb testing.TB) *env {
	tb.Helper()
	c := e2e.NewCluster(tb)
	r := c.MustStart(tb)
	return &env{c: c, r: r, conn: e2e.MustConnect(tb, c.DatabaseURL)}
}

// MustUser registers a user on the replica.
func (e *env) MustUser(tb testing.TB, name string) *e2e.Client {
	tb.Helper()
	return e2e.MustRegister(tb, e.r.URL, name)
}

// Anonymous is a client without a token.
func (e *env) Anonymous() *e2e.Client { return &e2e.Client{Base: e.r.URL} }

// counts is what the database holds, to show a refused request stored
// nothing.
type counts struct {
	Rooms, LiveRooms, Members, Events, Messages, LastSeqSum int64
	// Conversations: reactions, messages edited or deleted, and the sum of
	// every read marker.
	Reactions, Changed, MarkerSum int64
}

// MustCounts reads the row counts of the room tables, the sum of every
// room's last_seq, and what conversations change.
func (e *env) MustCounts(tb testing.TB) counts {
	tb.Helper()
	var n counts
	err := e.conn.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM rooms),
		(SELECT count(*) FROM rooms WHERE deleted_at IS NULL),
		(SELECT count(*) FROM room_members),
		(SELECT count(*) FROM room_events),
		(SELECT count(*) FROM room_events WHERE type = 'message'),
		(SELECT COALESCE(sum(last_seq), 0)::bigint FROM rooms),
		(SELECT count(*) FROM reactions),
		(SELECT count(*) FROM messages WHERE edited_at IS NOT NULL OR deleted_at IS NOT NULL),
		(SELECT COALESCE(sum(last_read_seq), 0)::bigint FROM room_members)`).
		Scan(&n.Rooms, &n.LiveRooms, &n.Members, &n.Events, &n.Messages, &n.LastSeqSum, &n.Reactions, &n.Changed, &n.MarkerSum)
	if err != nil {
		tb.Fatalf("read counts: %v", err)
	}
	return n
}

// event is one row of the room event log.
type event struct {
	Seq       int64
	Type      string
	SubjectID string
	Data      map[string]any
}

// MustEvents reads a room's whole event log from Postgres and checks it is
// gap-free from seq 1 and agrees with rooms.last_seq.
func (e *env) MustEvents(tb testing.TB, roomID string) []event {
	tb.Helper()
	ctx := context.Background()
	rows, err := e.conn.Query(ctx, `SELECT seq, type, COALESCE(subject_id::text, ''), data FROM room_events WHERE room_id = $1 ORDER BY seq`, roomID)
	if err != nil {
		tb.Fatalf("read events: %v", err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (event, error) {
		var ev event
		var data string
		if err := row.Scan(&ev.Seq, &ev.Type, &ev.SubjectID, &data); err != nil {
			return ev, err
		}
		return ev, json.Unmarshal([]byte(data), &ev.Data)
	})
	if err != nil {
		tb.Fatalf("read events: %v", err)
	}
	var last int64
	if err := e.conn.QueryRow(ctx, `SELECT last_seq FROM rooms WHERE id = $1`, roomID).Scan(&last); err != nil {
		tb.Fatalf("read last_seq: %v", err)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			tb.Fatalf("room %s: event %d has seq %d: the log has a gap", roomID, i, ev.Seq)
		}
		if s, ok := ev.Data["seq"].(float64); !ok || int64(s) != ev.Seq {
			tb.Fatalf("room %s: event %d data seq %v, want %d", roomID, ev.Seq, ev.Data["seq"], ev.Seq)
		}
	}
	if int64(len(evs)) != last {
		tb.Fatalf("room %s: %d events, last_seq %d", roomID, len(evs), last)
	}
	return evs
}

// MustLastEvent returns the last event of a room's log.
func (e *env) MustLastEvent(tb testing.TB, roomID string) event {
	tb.Helper()
	evs := e.MustEvents(tb, roomID)
	if len(evs) == 0 {
		tb.Fatalf("room %s has no events", roomID)
	}
	return evs[len(evs)-1]
}

// MustStatus checks a response's status; an error status must come as a
// problem+json.
func MustStatus(tb testing.TB, resp *e2e.Response, want int) {
	tb.Helper()
	if want >= 400 {
		resp.MustProblem(tb, want)
		return
	}
	if resp.Status != want {
		tb.Fatalf("status %d, want %d: %s", resp.Status, want, resp.Body)
	}
}

// MustDecode checks the status and decodes the body.
func MustDecode[T any](tb testing.TB, resp *e2e.Response, want int) T {
	tb.Helper()
	MustStatus(tb, resp, want)
	var v T
	resp.JSON(tb, &v)
	return v
}

// MustGetRoom reads a room the client can see.
func MustGetRoom(tb testing.TB, c *e2e.Client, roomID string) chat.Room {
	tb.Helper()
	return MustDecode[chat.Room](tb, c.Do(tb, http.MethodGet, "/v1/rooms/"+roomID, nil), http.StatusOK)
}

// MustAddMember has the owner add a user to a room.
func MustAddMember(tb testing.TB, owner *e2e.Client, roomID, userID string) chat.Member {
	tb.Helper()
	return MustDecode[chat.Member](tb, owner.Do(tb, http.MethodPut, "/v1/rooms/"+roomID+"/members/"+userID, nil), http.StatusOK)
}

// MustMembers lists a room's members.
func MustMembers(tb testing.TB, c *e2e.Client, roomID string) []chat.Member {
	tb.Helper()
	return MustDecode[struct {
		Members []chat.Member `json:"members"`
	}](tb, c.Do(tb, http.MethodGet, "/v1/rooms/"+roomID+"/members", nil), http.StatusOK).Members
}

// page is a page of history.
type page struct {
	Messages []chat.Message `json:"messages"`
	HasMore  bool           `json:"has_more"`
}

// MustHistory reads a page of history with the given query.
func MustHistory(tb testing.TB, c *e2e.Client, roomID string, q url.Values) page {
	tb.Helper()
	p := MustDecode[page](tb, c.Do(tb, http.MethodGet, "/v1/rooms/"+roomID+"/messages?"+q.Encode(), nil), http.StatusOK)
	if p.Messages == nil {
		tb.Fatalf("history: messages is null, want an array")
	}
	return p
}

// roomList is a page of rooms as sent, next_cursor kept raw so its absence
// shows.
type roomList struct {
	Rooms      []chat.Room      `json:"rooms"`
	NextCursor *json.RawMessage `json:"next_cursor"`
}

// MustListRooms lists rooms with the given query.
func MustListRooms(tb testing.TB, c *e2e.Client, q url.Values) roomList {
	tb.Helper()
	l := MustDecode[roomList](tb, c.Do(tb, http.MethodGet, "/v1/rooms?"+q.Encode(), nil), http.StatusOK)
	if l.Rooms == nil {
		tb.Fatalf("list rooms: rooms is null, want an array")
	}
	return l
}

// MustStreamResponse opens a room's event stream and returns the initial
// answer; a successful stream is closed right away.
func MustStreamResponse(tb testing.TB, c *e2e.Client, roomID string) *e2e.Response {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(c.StreamRequest(ctx, roomID, ""))
	if err != nil {
		tb.Fatalf("open stream: %v", err)
	}
	defer resp.Body.Close()
	out := &e2e.Response{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			tb.Fatalf("stream: content type %q, want text/event-stream", ct)
		}
		return out
	}
	if out.Body, err = io.ReadAll(resp.Body); err != nil {
		tb.Fatalf("read stream answer: %v", err)
	}
	return out
}

// unknownID is a well-formed id that names nothing.
func unknownID() string { return uuid.NewString() }

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func ids(rooms []chat.Room) []string {
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = r.ID
	}
	return out
}

func jsonString(raw json.RawMessage, s *string) error { return json.Unmarshal(raw, s) }

// call is one request of a concurrent batch.
type call struct {
	c            *e2e.Client
	method, path string
	body         any
}

// MustDoConcurrently sends every call at once, each from its own goroutine,
// released together, and returns the answers in the order of calls.
func MustDoConcurrently(tb testing.TB, calls []call) []*e2e.Response {
	tb.Helper()
	resps := make([]*e2e.Response, len(calls))
	errs := make([]error, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, cl := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resps[i], errs[i] = cl.c.Try(cl.method, cl.path, cl.body)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("%s %s: %v", calls[i].method, calls[i].path, err)
		}
	}
	return resps
}

// posts are the calls posting bodies[i] as who[i].
func posts(roomID string, who []*e2e.Client, bodies []map[string]string) []call {
	calls := make([]call, len(bodies))
	for i := range bodies {
		calls[i] = call{who[i], http.MethodPost, "/v1/rooms/" + roomID + "/messages", bodies[i]}
	}
	return calls
}

// MustLockRoom takes a room's row lock from a connection of the test's own,
// so that calls changing the room queue up behind it. The returned function
// releases it; it is also released when the test ends.
func (e *env) MustLockRoom(tb testing.TB, roomID string) (release func()) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.c.DatabaseURL)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, `SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE`, roomID)
	}
	if err != nil {
		conn.Close(ctx)
		tb.Fatalf("lock room: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := tx.Commit(ctx); err != nil {
				tb.Errorf("release room lock: %v", err)
			}
			conn.Close(ctx)
		})
	}
	tb.Cleanup(release)
	return release
}

// MustAwaitLockWaiters waits until n backends of the test database are
// waiting for a lock.
func (e *env) MustAwaitLockWaiters(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	got := 0
	for time.Now().Before(deadline) {
		err := e.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&got)
		if err != nil {
			tb.Fatalf("read pg_stat_activity: %v", err)
		}
		if got == n {
			return
		}
		<-tick.C
	}
	tb.Fatalf("%d backends wait for a lock, want %d", got, n)
}

// Start sends the call from its own goroutine; the channel yields the
// answer (nil after an error, which fails the test).
func (cl call) Start(tb testing.TB) <-chan *e2e.Response {
	out := make(chan *e2e.Response, 1)
	go func() {
		resp, err := cl.c.Try(cl.method, cl.path, cl.body)
		if err != nil {
			tb.Errorf("%s %s: %v", cl.method, cl.path, err)
		}
		out <- resp
	}()
	return out
}

func ptr[T any](v T) *T { return &v }

// shared is a room without the caller's read state, as every viewer sees it.
func shared(r chat.Room) chat.Room {
	r.LastReadSeq, r.UnreadCount = nil, nil
	return r
}

// MustRunQueued holds the room's lock, queues calls behind it one after
// the other (each waits for the lock before the next is sent, so they get
// it in this order), releases it and checks each answer's status.
func (e *env) MustRunQueued(tb testing.TB, roomID string, calls []call, want []int) {
	tb.Helper()
	release := e.MustLockRoom(tb, roomID)
	var answers []<-chan *e2e.Response
	for i, cl := range calls {
		answers = append(answers, cl.Start(tb))
		e.MustAwaitLockWaiters(tb, i+1)
	}
	release()
	for i, ch := range answers {
		resp := <-ch
		if resp == nil {
			tb.FailNow()
		}
		if resp.Status != want[i] {
			tb.Fatalf("call %d: status %d, want %d: %s", i, resp.Status, want[i], resp.Body)
		}
	}
}

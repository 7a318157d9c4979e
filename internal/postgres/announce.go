package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// Coalesced announcements. Room events commit without pg_notify (every
// notifying commit in the database is serialized on one lock): posts (group
// commits and postAlone), and the joins, leaves, room changes, edits,
// deletes and reactions (inLogTx and the room pipes). After its commit a
// write hands its events to the replica's announcer, which NOTIFYs what
// committed in batches: at once when it is idle, so a lone write is not
// delayed, and under load everything that committed while the previous
// batch was being sent, the way group commit works. One batch is one transaction of
// pg_notify calls, each payload carrying as many events as fit in 8000
// bytes, with synchronous_commit off: an announcement is only a wake-up, the
// log is the truth. Listeners put each room's events back in seq order (see
// roomOrder), and an event whose announcement is lost (the replica died
// between its commit and its announcement, or the NOTIFY failed) is found
// by the listeners' horizon sweep (see sweep.go) within a second.

// batchMark starts a batch payload; a single-event payload (see
// EncodeNotification) starts with its room id, a UUID, never with it.
const batchMark = '*'

// maxAnnouncePending bounds the events waiting for an announcement; past it
// new ones are dropped (and left to the listeners' sweep) rather than held.
const maxAnnouncePending = 50000

// announceSQL sends one batch: payloads $1, in order, in one transaction
// that does not wait for its commit record to reach the disk.
const announceSQL = `SELECT count(pg_notify('` + NotifyChannel + `', p.payload)) FROM
	(SELECT set_config('synchronous_commit', 'off', true)) s,
	(SELECT payload FROM unnest($1::text[]) WITH ORDINALITY AS t(payload, i) ORDER BY i) p`

// announcer batches the announcements of one DB's commits.
type announcer struct {
	send   func(ctx context.Context, payloads []string) error
	logger *slog.Logger
	// local, when set, gets the events too, at once (see local.go).
	local atomic.Pointer[func([]chat.Event)]

	mu      sync.Mutex
	pending []chat.Event
	running bool
	// idle is closed and replaced each time the flusher has sent everything.
	idle chan struct{}
}

func newAnnouncer(send func(ctx context.Context, payloads []string) error) *announcer {
	return &announcer{send: send, logger: slog.Default(), idle: make(chan struct{})}
}

// announce queues committed events; the flusher sends them. Per room, evs
// must be in seq order.
func (a *announcer) announce(evs ...chat.Event) {
	if len(evs) == 0 {
		return
	}
	if local := a.local.Load(); local != nil {
		(*local)(evs)
	}
	a.mu.Lock()
	if len(a.pending)+len(evs) > maxAnnouncePending {
		a.mu.Unlock()
		a.logger.Warn("announcements dropped: too many pending; listeners' sweep delivers them", "events", len(evs))
		return
	}
	a.pending = append(a.pending, evs...)
	start := !a.running
	a.running = true
	a.mu.Unlock()
	if start {
		go a.flush()
	}
}

// flush sends batches until nothing is pending, then exits: there is no
// goroutine while the replica does not post.
func (a *announcer) flush() {
	var buf []chat.Event
	for {
		a.mu.Lock()
		if len(a.pending) == 0 {
			a.running = false
			close(a.idle)
			a.idle = make(chan struct{})
			a.mu.Unlock()
			return
		}
		buf, a.pending = a.pending, buf[:0]
		a.mu.Unlock()
		payloads := encodeBatches(buf)
		var err error
		for attempt := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
			err = a.send(ctx, payloads)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
		}
		if err != nil {
			// Committed, so listeners find them in their sweep.
			a.logger.Warn("announce events failed; listeners' sweep delivers them", "events", len(buf), "err", err)
		}
		clear(buf)
	}
}

// announceTimeout bounds one batch's NOTIFY.
const announceTimeout = 2 * time.Second

// wait blocks until nothing is pending or ctx ends (for tests and shutdown).
func (a *announcer) wait(ctx context.Context) error {
	for {
		a.mu.Lock()
		if !a.running {
			a.mu.Unlock()
			return nil
		}
		idle := a.idle
		a.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// A batch payload is batchMark then records, each a header line "room_id
// seq type subject_id committed_us length" and length bytes of the event's
// data; length -1 is a reference (the data is read from the log).

// encodeBatches packs evs, in order, into payloads under maxInlinePayload.
func encodeBatches(evs []chat.Event) []string {
	var out []string
	var b bytes.Buffer
	b.WriteByte(batchMark)
	for _, ev := range evs {
		head := ev.RoomID + " " + strconv.FormatInt(ev.Seq, 10) + " " + string(ev.Type) + " " + ev.SubjectID + " " +
			strconv.FormatInt(ev.CommittedAt.UnixMicro(), 10) + " "
		data := ev.Data
		size := len(head) + len(strconv.Itoa(len(data))) + 1 + len(data)
		if 1+size > maxInlinePayload {
			data = nil
			size = len(head) + 3
		}
		if b.Len()+size > maxInlinePayload {
			out = append(out, b.String())
			b.Reset()
			b.WriteByte(batchMark)
		}
		b.WriteString(head)
		if data == nil {
			b.WriteString("-1\n")
			continue
		}
		b.WriteString(strconv.Itoa(len(data)))
		b.WriteByte('\n')
		b.Write(data)
	}
	if b.Len() > 1 {
		out = append(out, b.String())
	}
	return out
}

// DecodeAnnouncement parses a payload of either kind (a batch, or one
// event as EncodeNotification writes it) into its events, in order; an
// event without Data is a reference to the log.
func DecodeAnnouncement(payload string) ([]chat.Event, error) {
	if payload == "" || payload[0] != batchMark {
		ev, _, err := DecodeNotification(payload)
		if err != nil {
			return nil, err
		}
		return []chat.Event{ev}, nil
	}
	// One copy of the payload: the events' data share it.
	rest := []byte(payload[1:])
	var evs []chat.Event
	for len(rest) > 0 {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("decode announcement: record %d has no header end", len(evs))
		}
		fields := bytes.Split(line, []byte(" "))
		if len(fields) != 6 {
			return nil, fmt.Errorf("decode announcement: record %d: %d header fields", len(evs), len(fields))
		}
		seq, err := strconv.ParseInt(string(fields[1]), 10, 64)
		if err != nil || seq <= 0 {
			return nil, fmt.Errorf("decode announcement: bad seq %q", fields[1])
		}
		us, err := strconv.ParseInt(string(fields[4]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decode announcement: bad committed_us %q", fields[4])
		}
		n, err := strconv.Atoi(string(fields[5]))
		if err != nil || n < -1 || n > len(after) {
			return nil, fmt.Errorf("decode announcement: bad length %q", fields[5])
		}
		ev := chat.Event{RoomID: string(fields[0]), Seq: seq, Type: chat.EventType(fields[2]), SubjectID: string(fields[3])}
		if us > 0 {
			ev.CommittedAt = time.UnixMicro(us)
		}
		if n >= 0 {
			ev.Data = after[:n:n]
			after = after[n:]
		}
		evs = append(evs, ev)
		rest = after
	}
	return evs, nil
}

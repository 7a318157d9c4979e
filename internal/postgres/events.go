package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

var _ chat.EventLog = (*DB)(nil)

// NotifyChannel is the one channel every replica LISTENs on.
const NotifyChannel = "parley_events"

// maxInlinePayload keeps NOTIFY payloads under Postgres's 8000-byte limit;
// larger events are announced by reference and read from the log.
const maxInlinePayload = 7900

// committedWidth is the most digits a database clock reading in
// microseconds takes (until the year 2286).
const committedWidth = 16

// A single-event payload is a header line "room_id seq type subject_id
// committed_us" and, when it fits, the event's data after a newline; without
// data it is a reference to the log. committed_us is the database's clock,
// in microseconds since the Unix epoch, as the event was appended, so
// delivery lag is measured from one clock, the database's.
//
// Replicas no longer send it: every event is announced after its commit in
// a batch payload (see announce.go). Replicas from before that sent one per
// event from inside the event's own transaction (before batching, every
// event; then joins, leaves, room changes, edits, deletes and reactions),
// so listeners still decode it (DecodeAnnouncement), for a rolling upgrade.

// EncodeNotification is the single-event payload announcing ev, with
// ev.CommittedAt as committed_us, as older replicas send it: tests and
// fuzzing speak as such a replica with it.
func EncodeNotification(ev chat.Event) string {
	head := ev.RoomID + " " + strconv.FormatInt(ev.Seq, 10) + " " + string(ev.Type) + " " + ev.SubjectID + " " +
		strconv.FormatInt(ev.CommittedAt.UnixMicro(), 10)
	if len(head)+1+len(ev.Data) > maxInlinePayload {
		return head
	}
	return head + "\n" + string(ev.Data)
}

// DecodeNotification parses an announcement; inline reports whether it
// carried the data. A header without committed_us (from a replica older
// than it) leaves CommittedAt zero.
func DecodeNotification(payload string) (ev chat.Event, inline bool, err error) {
	head, data, inline := bytes.Cut([]byte(payload), []byte("\n"))
	fields := bytes.Split(head, []byte(" "))
	if len(fields) != 4 && len(fields) != 5 {
		return chat.Event{}, false, fmt.Errorf("decode notification: %d header fields", len(fields))
	}
	seq, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil || seq <= 0 {
		return chat.Event{}, false, fmt.Errorf("decode notification: bad seq %q", fields[1])
	}
	ev = chat.Event{RoomID: string(fields[0]), Seq: seq, Type: chat.EventType(fields[2]), SubjectID: string(fields[3])}
	if len(fields) == 5 {
		us, err := strconv.ParseInt(string(fields[4]), 10, 64)
		if err != nil || us <= 0 {
			return chat.Event{}, false, fmt.Errorf("decode notification: bad committed_us %q", fields[4])
		}
		ev.CommittedAt = time.UnixMicro(us)
	}
	if inline {
		ev.Data = data
	}
	return ev, inline, nil
}

// ReadEvents returns up to limit events of a room after seq after, in order.
// Deleted rooms keep their log, so this reads them too.
func (db *DB) ReadEvents(ctx context.Context, roomID string, after int64, limit int) ([]chat.Event, error) {
	if !validID(roomID) {
		return nil, roomNotFound()
	}
	rows, err := db.pool.Query(ctx, `SELECT room_id, seq, type, COALESCE(subject_id::text, ''), data FROM room_events
		WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, roomID, after, limit)
	if err != nil {
		return nil, dbError(err, "read events")
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Event, error) {
		var ev chat.Event
		var typ string
		err := row.Scan(&ev.RoomID, &ev.Seq, &typ, &ev.SubjectID, &ev.Data)
		ev.Type = chat.EventType(typ)
		return ev, err
	})
	return evs, dbError(err, "read events")
}

// LastSeq returns the room's last seq, deleted rooms included.
func (db *DB) LastSeq(ctx context.Context, roomID string) (int64, error) {
	if !validID(roomID) {
		return 0, roomNotFound()
	}
	var seq int64
	err := db.pool.QueryRow(ctx, `SELECT last_seq FROM rooms WHERE id = $1`, roomID).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, roomNotFound()
	}
	return seq, dbError(err, "read last seq")
}

// CheckStream authorizes the caller to stream a room: members only.
func (db *DB) CheckStream(ctx context.Context, userID, roomID string) (int64, error) {
	room, err := db.readRoom(ctx, userID, roomID, chat.NeedMember)
	return room.LastSeq, err
}

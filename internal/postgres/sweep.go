package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The horizon sweep is the listeners' safety net for announcements that
// never came: a replica that dies between a post's commit and its batch's
// NOTIFY (or whose NOTIFY failed) leaves committed events nobody announced.
// Every sweepInterval each listener asks, in one query whatever the number
// of rooms, which rooms got events in the last window of horizons, and
// reads on in a room whose newest such event it has not heard.
//
// A window is a range [lo, hi) of pg_snapshot_xmin horizons (see the 00005
// migration): an event with hx below a horizon had committed when that
// horizon was read, and one committed after it has a larger hx, so the
// windows of successive sweeps see each event exactly once. The window's
// top is the horizon read by the previous sweep, one interval old, so an
// event is looked for only once its announcement had an interval to arrive
// (no reads for announcements merely in flight), and an unannounced event
// is found within two intervals of its commit, under the 1 s in which a
// leaver's streams must end. The query walks the room_events_horizon index
// over the window's events only: its cost follows the post rate, not the
// number of rooms. An open transaction anywhere in the cluster holds the
// horizon back, and the sweep with it (announced events are not delayed).
const sweepInterval = 250 * time.Millisecond

// sweepSQL reads the current horizon and, per room, the oldest and newest
// events with hx in [$1, $2); $1 NULL reads the horizon alone.
const sweepSQL = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text, w.room_id::text, w.first, w.seq
	FROM (SELECT 1) one LEFT JOIN (
		SELECT room_id, min(seq) AS first, max(seq) AS seq FROM room_events
		WHERE $1::text IS NOT NULL AND hx >= $1::text::xid8 AND hx < $2::text::xid8 GROUP BY room_id
	) w ON true`

// horizonSweep is one listener's sweep position.
type horizonSweep struct {
	lo, hi string // the window to read next: [lo, hi); "" before the first horizons
	next   time.Time
}

// roomTop is a room's oldest (first) and newest (seq) events in a sweep's
// window.
type roomTop struct {
	roomID     string
	first, seq int64
}

// run reads the next window on conn: the rooms with events in it, and
// moves the window on to the horizon it read.
func (s *horizonSweep) run(ctx context.Context, conn *pgx.Conn) ([]roomTop, error) {
	var lo, hi any
	if s.lo != "" {
		lo, hi = s.lo, s.hi
	}
	rows, err := conn.Query(ctx, sweepSQL, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	defer rows.Close()
	var horizon string
	var tops []roomTop
	for rows.Next() {
		var room *string
		var first, seq *int64
		if err := rows.Scan(&horizon, &room, &first, &seq); err != nil {
			return nil, fmt.Errorf("sweep: %w", err)
		}
		if room != nil && first != nil && seq != nil {
			tops = append(tops, roomTop{*room, *first, *seq})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	switch {
	case s.hi == "":
		// First sweep: the window starts here.
		s.lo, s.hi = horizon, horizon
	default:
		s.lo, s.hi = s.hi, horizon
	}
	return tops, nil
}

package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

// Group commit. One transaction per post cannot reach thousands of posts a
// second: each commit is a WAL flush and a round trip or two. The posts a
// replica receives together go into one transaction instead, each still
// answered on its own: while a group commits, the posts arriving queue, and
// the next group takes them all (up to maxGroup), so a lone post goes at
// once and under load groups grow with the load, like Postgres's own group
// commit. maxGroups groups may be in flight at once.
//
// A group takes two round trips, as a single post did. The first begins
// the transaction, charges each post against its author's write limit
// (each author's first post in one statement, which takes the bucket rows
// in author order so that concurrent groups cannot deadlock on them; an
// author's further posts after it; a repeat of a client_id earlier in the
// group not at all: it shares that post's charge), locks the rooms of the
// posts the limit let through (in id order, for the same reason; a refused
// post never waits for a room lock) and looks up, for every post, its
// author and role, any message already stored under its client_id and the
// room of the message it replies to.
// Every post is then decided in Go, before anything is written: refused
// posts (over the limit, not a member, a repeated or conflicting client_id,
// a bad reply_to) are answered as they would be alone, and their charges
// stick, since the transaction commits whatever is refused. The second
// round trip appends the accepted posts, each room's in arrival order with
// the next seqs, in one statement, and commits. Should that statement fail
// all the same (nothing known makes it), or the group fails on a deadlock,
// it is rolled back and its posts are posted one by one, so one post
// cannot fail another.
// After the commit the group's events go to the announcer.

// The group statements take their uuid arrays as text[] and cast them in
// SQL: pgx cannot encode a []string as a binary uuid[], and for each such
// argument it built an error and fell back to quoting every element as
// text, 9% of a replica's CPU under the throughput scenario.

// Group commit bounds.
const (
	maxGroup  = 64 // posts per transaction
	maxGroups = 2  // transactions in flight per replica
)

// postRequest is one post waiting for its group.
type postRequest struct {
	ctx            context.Context
	userID, roomID string
	in             chat.MessagePost
	done           chan postResult
}

type postResult struct {
	msg     chat.Message
	created bool
	err     error
}

// groupCommitter queues posts and runs their groups.
type groupCommitter struct {
	db *DB

	mu      sync.Mutex
	queue   []*postRequest
	running int
}

// post queues r and waits for its answer.
func (g *groupCommitter) post(r *postRequest) postResult {
	r.done = make(chan postResult, 1)
	g.mu.Lock()
	g.queue = append(g.queue, r)
	start := g.running < maxGroups
	if start {
		g.running++
	}
	g.mu.Unlock()
	if start {
		go g.run()
	}
	select {
	case res := <-r.done:
		return res
	case <-r.ctx.Done():
		// The caller's deadline passed or it went away: it gets the
		// answer it would have had alone, while its group goes on (the
		// post may or may not be stored, as when an answer is lost).
		select {
		case res := <-r.done:
			return res
		default:
		}
		return postResult{err: dbError(r.ctx.Err(), "post message")}
	}
}

// run commits groups until the queue is empty.
func (g *groupCommitter) run() {
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		if n == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		group := slices.Clone(g.queue[:n])
		g.queue = slices.Delete(g.queue, 0, n)
		g.mu.Unlock()
		live := group[:0]
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				r.done <- postResult{err: dbError(err, "post message")}
				continue
			}
			live = append(live, r)
		}
		if len(live) > 0 {
			g.db.commitGroup(live)
		}
	}
}

// groupLookupSQL reads, per post ($1 rooms, $2 authors, $3 client_ids, $4
// reply_tos, in order), the author (NULL for none), the author's role in the
// room, the message stored under the client_id (its id and body hash) and
// the room of the message replied to.
const groupLookupSQL = `SELECT u.id::text, COALESCE(u.username, ''), COALESCE(u.display_name, ''), COALESCE(rm.role, ''),
		COALESCE(s.id::text, ''), s.body_hash, COALESCE(rp.room_id::text, '')
	FROM unnest($1::text[]::uuid[], $2::text[]::uuid[], $3::text[], $4::text[]::uuid[]) WITH ORDINALITY AS t(room_id, user_id, client_id, reply_to, i)
	LEFT JOIN users u ON u.id = t.user_id
	LEFT JOIN room_members rm ON rm.room_id = t.room_id AND rm.user_id = t.user_id
	LEFT JOIN messages s ON s.room_id = t.room_id AND s.author_id = t.user_id AND s.client_id = t.client_id
	LEFT JOIN messages rp ON rp.id = t.reply_to
	ORDER BY t.i`

// groupPlanSQL makes the planner probe indexes for the group's statements,
// which look up and update rows by key for each element of their arrays:
// that is the right plan at any table size, but Postgres caches a generic
// plan after a statement's fifth run, and one made while the tables were
// small (a new deployment) scans them whole and hashes, and stays cached
// as they grow, until the next ANALYZE. A fresh database slid from 2,900 to
// 1,200 posts/s in 40 s that way, reading 100 million messages rows in 6 s.
const groupPlanSQL = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
	set_config('enable_mergejoin', 'off', true)`

// groupChargeSQL is chargeWriteSQL for a post of a group: a grant goes
// into the transaction's list parley.write_grants, which groupLockSQL
// reads.
const groupChargeSQL = chargeWriteCTE + `
	SELECT tokens, set_config('parley.write_grants', COALESCE(current_setting('parley.write_grants', true), '') ||
		CASE WHEN tokens >= 0 THEN ' ' || $6::text ELSE '' END, true) FROM verdict`

// groupChargeFirstSQL charges the first post of each author of a group
// in one statement ($1 authors, all distinct, $2 rooms, $3 client_ids, $4
// grant ids; $5 rate, $6 burst), as chargeWriteSQL charges one (a repeat
// of a stored client_id is free): the buckets are taken in author order,
// so concurrent groups cannot deadlock on them. It returns the tokens left
// per post, in order, and the transaction's list of grants (see
// groupChargeSQL).
const groupChargeFirstSQL = `WITH p AS (
		SELECT * FROM unnest($1::text[]::uuid[], $2::text[]::uuid[], $3::text[], $4::text[]) WITH ORDINALITY AS p(user_id, room_id, client_id, grant_id, i)
	), charged AS (
		INSERT INTO write_buckets AS b (user_id, tokens, updated_at)
		SELECT p.user_id, $6::float8 - 1, clock_timestamp() FROM p
		WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.room_id = p.room_id AND m.author_id = p.user_id AND m.client_id = p.client_id)
		ORDER BY p.user_id
		ON CONFLICT (user_id) DO UPDATE SET
			tokens = greatest(-$6::float8, least($6::float8,
				b.tokens + $5::float8 * greatest(0, extract(epoch FROM clock_timestamp() - b.updated_at))) - 1),
			updated_at = greatest(b.updated_at, clock_timestamp())
		RETURNING b.user_id, b.tokens
	), v AS (
		SELECT p.i, p.grant_id, COALESCE(c.tokens, 0) AS tokens FROM p LEFT JOIN charged c ON c.user_id = p.user_id
	)
	SELECT array_agg(v.tokens ORDER BY v.i),
		set_config('parley.write_grants', COALESCE(current_setting('parley.write_grants', true), '') || ' ' ||
			COALESCE(string_agg(v.grant_id, ' ') FILTER (WHERE v.tokens >= 0), ''), true)
	FROM v`

// groupLockSQL locks, in id order, the live rooms of the posts ($1 rooms,
// $2 grant ids, "" for an uncharged post) the write limit let through, so a
// refused post never waits for a room lock, and reads them with their
// message counts.
const groupLockSQL = `SELECT ` + roomCols + `, r.message_count FROM rooms r
	WHERE r.id IN (SELECT p.room_id FROM unnest($1::text[]::uuid[], $2::text[]) AS p(room_id, grant_id)
		WHERE p.grant_id = '' OR p.grant_id = ANY(string_to_array(current_setting('parley.write_grants', true), ' ')))
		AND r.deleted_at IS NULL
	ORDER BY r.id FOR NO KEY UPDATE`

// groupAppendSQL appends a group's accepted posts ($1-$11, one element per
// post) and stores the rooms' new counters ($12-$14, one per room) and the
// posters' read markers ($15-$18, one per room and poster): the events take
// their rooms' hx as appendSQL gives it. It returns the database's clock.
const groupAppendSQL = `WITH r AS (
		UPDATE rooms SET last_seq = x.last_seq, message_count = x.message_count,
			last_hx = greatest(rooms.last_hx, pg_current_xact_id())
		FROM unnest($12::text[]::uuid[], $13::bigint[], $14::bigint[]) AS x(id, last_seq, message_count)
		WHERE rooms.id = x.id RETURNING rooms.id, rooms.last_hx
	), t AS (
		SELECT * FROM unnest($1::text[]::uuid[], $2::bigint[], $3::text[], $4::text[]::uuid[], $5::text[], $6::timestamptz[],
			$7::text[]::uuid[], $8::text[], $9::bytea[], $10::text[]::uuid[], $11::bigint[])
			AS t(room_id, seq, data, author_id, client_id, created_at, message_id, body, body_hash, reply_to, ordinal)
	), e AS (
		INSERT INTO room_events (room_id, seq, type, data, subject_id, client_id, created_at, message_id, hx)
		SELECT t.room_id, t.seq, 'message', t.data, t.author_id, t.client_id, t.created_at, t.message_id, r.last_hx
		FROM t JOIN r ON r.id = t.room_id
	), m AS (
		INSERT INTO messages (id, room_id, seq, ordinal, author_id, body, body_hash, client_id, reply_to, created_at)
		SELECT t.message_id, t.room_id, t.seq, t.ordinal, t.author_id, t.body, t.body_hash, t.client_id, t.reply_to, t.created_at FROM t
	), rd AS (
		UPDATE room_members SET last_read_seq = y.seq, last_read_ordinal = y.ordinal
		FROM unnest($15::text[]::uuid[], $16::text[]::uuid[], $17::bigint[], $18::bigint[]) AS y(room_id, user_id, seq, ordinal)
		WHERE room_members.room_id = y.room_id AND room_members.user_id = y.user_id
	)
	` + committedSQL

// groupRoom is a locked room of a group.
type groupRoom struct {
	room         chat.Room
	messageCount int64
	changed      bool
}

// decided is one post's fate in its group.
type decided struct {
	res      postResult
	accepted bool
	// repeatOf is the stored message a repeated client_id names, read
	// after the commit for its current state.
	repeatOf string
	ev       chat.Event
	ordinal  int64
}

// commitGroup runs one group (see the package comment above) and answers
// every post in it.
func (db *DB) commitGroup(group []*postRequest) {
	// A group runs under the pool's deadline; a lone post under its own
	// caller's context too, as it would alone.
	base := context.Background()
	if len(group) == 1 {
		base = group[0].ctx
	}
	ctx, cancel := db.bound(base)
	defer cancel()
	out, evs, err := db.tryGroup(ctx, group)
	if err != nil {
		var ce *chat.Error
		if len(group) > 1 && !errors.As(err, &ce) && !isConnError(err) && !errors.Is(err, context.DeadlineExceeded) {
			// The group failed on something no post was checked for (a
			// deadlock, a constraint): it rolled back, charges included,
			// so post them one by one, each charged and answered on its
			// own.
			for _, r := range group {
				msg, created, err := db.postAlone(r.ctx, r.userID, r.roomID, r.in, writer{userID: r.userID, clientID: r.in.ClientID})
				r.done <- postResult{msg, created, err}
			}
			return
		}
		for _, r := range group {
			r.done <- postResult{err: dbError(err, "post message")}
		}
		return
	}
	db.ann.announce(evs...)
	for i, r := range group {
		d := out[i]
		if d.repeatOf != "" && d.res.err == nil {
			d.res.msg, d.res.err = db.FindMessage(r.ctx, r.userID, r.roomID, d.repeatOf)
		}
		r.done <- d.res
	}
}

// tryGroup is commitGroup's transaction: each post's decision, and the
// events appended, in commit order.
func (db *DB) tryGroup(ctx context.Context, group []*postRequest) ([]decided, []chat.Event, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, dbError(err, "acquire connection")
	}
	ok := false
	defer func() {
		if !ok {
			// Released inside a transaction, the connection is destroyed
			// by the pool, which rolls the transaction back.
			conn.Conn().PgConn().Close(ctx) //nolint:errcheck // the pool drops it either way
		}
		conn.Release()
	}()

	n := len(group)
	users, clients, replies := make([]string, n), make([]*string, n), make([]*string, n)
	roomOf := make([]string, n)
	for i, r := range group {
		roomOf[i], users[i] = r.roomID, r.userID
		clients[i], replies[i] = nullable(r.in.ClientID), nullable(r.in.ReplyTo)
	}
	// Round trip 1: BEGIN, charges, room locks, lookups.
	var b pgx.Batch
	b.Queue(`BEGIN`)
	b.Queue(groupPlanSQL)
	// A post repeating the room, author and client_id of an earlier post
	// of the group (a client retrying while its first attempt is still
	// queued) is not charged: it takes its first instance's charge, grant
	// and verdict, and is decided after it below (the stored message's
	// repeat when the first is stored, or as a post of its own). Charged
	// on its own, before the first instance is stored, it would pay twice,
	// where in a later group it would be the repeat of a stored client_id,
	// which is free.
	type key struct{ room, user, client string }
	firstOf := make(map[key]int)
	repeatOf := make([]int, n) // the first instance's index, -1 for none
	for i, r := range group {
		repeatOf[i] = -1
		if r.in.ClientID == "" {
			continue
		}
		k := key{r.roomID, r.userID, r.in.ClientID}
		if j, dup := firstOf[k]; dup {
			repeatOf[i] = j
			continue
		}
		firstOf[k] = i
	}
	// Each author's first post is charged in one statement for the group
	// (groupChargeFirstSQL); an author's further posts, rare, one by one
	// after it, in arrival order.
	charges := make([]writeCharge, n)
	var first, more []int
	seen := make(map[string]bool, n)
	for i := range group {
		if j := repeatOf[i]; j >= 0 {
			// Its room is locked when the first instance's is.
			charges[i] = charges[j]
			continue
		}
		charges[i] = db.newWriteCharge()
		if !charges[i].on {
			continue
		}
		if seen[users[i]] {
			more = append(more, i)
			continue
		}
		seen[users[i]] = true
		first = append(first, i)
	}
	if len(first) > 0 {
		fu, fr, fc, fg := make([]string, len(first)), make([]string, len(first)), make([]*string, len(first)), make([]string, len(first))
		for k, i := range first {
			fu[k], fr[k], fc[k], fg[k] = users[i], roomOf[i], clients[i], charges[i].grant
		}
		c := charges[first[0]]
		b.Queue(groupChargeFirstSQL, fu, fr, fc, fg, c.rate, c.burst)
	}
	for _, i := range more {
		c := charges[i]
		b.Queue(groupChargeSQL, users[i], roomOf[i], clients[i], c.rate, c.burst, c.grant)
	}
	grants := make([]string, n)
	for i, c := range charges {
		grants[i] = c.grant
	}
	b.Queue(groupLockSQL, roomOf, grants)
	b.Queue(groupLookupSQL, roomOf, users, clients, replies)
	br := conn.SendBatch(ctx, &b)
	locked := make(map[string]*groupRoom)
	verdicts := make([]error, n)
	type looked struct {
		authorID              *string
		username, displayName string
		role                  chat.Role
		storedID              string
		storedHash            []byte
		replyRoom             string
	}
	lk := make([]looked, n)
	err = func() error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		if len(first) > 0 {
			var tokens []float64
			var grants string
			if err := br.QueryRow().Scan(&tokens, &grants); err != nil {
				return err
			}
			if len(tokens) != len(first) {
				return fmt.Errorf("group charge: %d verdicts for %d posts", len(tokens), len(first))
			}
			for k, i := range first {
				verdicts[i] = charges[i].refusal(tokens[k])
			}
		}
		for _, i := range more {
			var tokens float64
			var grant string
			if err := br.QueryRow().Scan(&tokens, &grant); err != nil {
				return err
			}
			verdicts[i] = charges[i].refusal(tokens)
		}
		for i, j := range repeatOf {
			if j >= 0 {
				verdicts[i] = verdicts[j]
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			gr := &groupRoom{}
			if err := rows.Scan(&gr.room.ID, &gr.room.Name, &gr.room.Topic, &gr.room.Visibility, &gr.room.OwnerID,
				&gr.room.MemberCount, &gr.room.LastSeq, &gr.room.CreatedAt, &gr.messageCount); err != nil {
				rows.Close()
				return err
			}
			gr.room.CreatedAt = gr.room.CreatedAt.UTC()
			locked[gr.room.ID] = gr
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = br.Query()
		if err != nil {
			return err
		}
		i := 0
		for rows.Next() {
			if i >= n {
				rows.Close()
				return fmt.Errorf("group lookup: more rows than posts")
			}
			l := &lk[i]
			if err := rows.Scan(&l.authorID, &l.username, &l.displayName, &l.role, &l.storedID, &l.storedHash, &l.replyRoom); err != nil {
				rows.Close()
				return err
			}
			i++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if i != n {
			return fmt.Errorf("group lookup: %d rows for %d posts", i, n)
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, dbError(err, "lock rooms")
	}

	// Decide every post, in arrival order.
	out := make([]decided, n)
	var accepted []int
	fresh := make(map[key]int) // client_ids accepted in this group
	at := now()
	for i, r := range group {
		d := &out[i]
		l := lk[i]
		gr := locked[r.roomID]
		switch {
		case verdicts[i] != nil:
			d.res.err = verdicts[i]
			continue
		case gr == nil:
			d.res.err = roomNotFound()
			continue
		case l.authorID == nil:
			d.res.err = chat.Errorf(chat.ENotFound, "user not found")
			continue
		}
		if err := chat.Authorize(gr.room.Visibility, l.role, chat.NeedMember); err != nil {
			d.res.err = err
			continue
		}
		if l.storedID != "" {
			if !bytes.Equal(l.storedHash, bodyHash(r.in.Body)) {
				d.res.err = chat.Errorf(chat.EConflict, "client_id was already used for a different message")
			} else {
				d.repeatOf = l.storedID
			}
			continue
		}
		k := key{r.roomID, r.userID, r.in.ClientID}
		if j, dup := fresh[k]; dup && r.in.ClientID != "" {
			if group[j].in.Body != r.in.Body {
				d.res.err = chat.Errorf(chat.EConflict, "client_id was already used for a different message")
			} else {
				d.res = postResult{msg: out[j].res.msg}
			}
			continue
		}
		if r.in.ReplyTo != "" && l.replyRoom != gr.room.ID {
			d.res.err = chat.Invalid("body.reply_to", "reply_to names no message of this room")
			continue
		}
		author := chat.Author{ID: *l.authorID, Username: l.username, DisplayName: l.displayName}
		msg := chat.Message{ID: uuid.NewString(), RoomID: gr.room.ID, Author: author, Body: r.in.Body, ClientID: r.in.ClientID,
			ReplyTo: r.in.ReplyTo, CreatedAt: at, Reactions: []chat.Reaction{}}
		ev, _, err := nextEvent(&gr.room, chat.EventMessage, eventKeys{subjectID: r.userID, clientID: r.in.ClientID, messageID: msg.ID}, at,
			func(seq int64) any {
				msg.Seq = seq
				return msg
			})
		if err != nil {
			d.res.err = err
			continue
		}
		gr.messageCount++
		gr.changed = true
		d.ev, d.ordinal, d.accepted = ev, gr.messageCount, true
		d.res = postResult{msg: msg, created: true}
		if r.in.ClientID != "" {
			fresh[k] = i
		}
		accepted = append(accepted, i)
	}

	// Round trip 2: the appends and COMMIT (which also keeps the charges
	// of refused posts).
	var b2 pgx.Batch
	if len(accepted) > 0 {
		b2.Queue(groupAppendSQL, groupAppendArgs(group, out, accepted, locked)...)
	}
	b2.Queue(`COMMIT`)
	br = conn.SendBatch(ctx, &b2)
	var committedUS int64
	if len(accepted) > 0 {
		err = br.QueryRow().Scan(&committedUS)
	}
	if err == nil {
		var tag string
		t, cerr := br.Exec()
		tag, err = t.String(), cerr
		if err == nil && tag != "COMMIT" {
			err = fmt.Errorf("commit answered %q", tag)
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("append group: %w", err)
	}
	ok = true
	evs := make([]chat.Event, 0, len(accepted))
	for _, i := range accepted {
		out[i].ev.CommittedAt = time.UnixMicro(committedUS)
		evs = append(evs, out[i].ev)
	}
	return out, evs, nil
}

// groupAppendArgs are groupAppendSQL's arguments for the accepted posts.
func groupAppendArgs(group []*postRequest, out []decided, accepted []int, locked map[string]*groupRoom) []any {
	n := len(accepted)
	var (
		roomIDs, data, authors, bodies, msgIDs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seqs, ordinals                         = make([]int64, n), make([]int64, n)
		clients, replies                       = make([]*string, n), make([]*string, n)
		ats                                    = make([]time.Time, n)
		hashes                                 = make([][]byte, n)
	)
	type member struct{ room, user string }
	marks := make(map[member]int) // index into the marker arrays
	var mRooms, mUsers []string
	var mSeqs, mOrds []int64
	for k, i := range accepted {
		r, d := group[i], out[i]
		roomIDs[k], seqs[k], data[k], authors[k] = r.roomID, d.ev.Seq, string(d.ev.Data), r.userID
		clients[k], ats[k], msgIDs[k], bodies[k] = nullable(r.in.ClientID), d.res.msg.CreatedAt, d.res.msg.ID, r.in.Body
		hashes[k], replies[k], ordinals[k] = bodyHash(r.in.Body), nullable(r.in.ReplyTo), d.ordinal
		m := member{r.roomID, r.userID}
		if j, seen := marks[m]; seen {
			mSeqs[j], mOrds[j] = d.ev.Seq, d.ordinal // later posts come later
			continue
		}
		marks[m] = len(mRooms)
		mRooms, mUsers, mSeqs, mOrds = append(mRooms, r.roomID), append(mUsers, r.userID), append(mSeqs, d.ev.Seq), append(mOrds, d.ordinal)
	}
	var lRooms []string
	var lSeqs, lCounts []int64
	for id, gr := range locked {
		if gr.changed {
			lRooms, lSeqs, lCounts = append(lRooms, id), append(lSeqs, gr.room.LastSeq), append(lCounts, gr.messageCount)
		}
	}
	return []any{roomIDs, seqs, data, authors, clients, ats, msgIDs, bodies, hashes, replies, ordinals,
		lRooms, lSeqs, lCounts, mRooms, mUsers, mSeqs, mOrds}
}

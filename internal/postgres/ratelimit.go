package postgres

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/parley-chat/parley/internal/chat"
)

// Limits are the rate limits kept in Postgres, so that they hold across
// replicas. A zero count or rate is no limit.
type Limits struct {
	// PostRate is writes (posts, edits, deletes, reactions) per user per
	// second; PostBurst is how many may come at once.
	PostRate  float64
	PostBurst int
	// LoginFailures is failed logins per username and client IP, and
	// LoginFailuresPerUser per username from all IPs, per LoginWindow.
	LoginFailures        int
	LoginFailuresPerUser int
	LoginWindow          time.Duration
}

// Option configures a DB.
type Option func(*DB)

// WithLimits sets the rate limits; without it there are none.
func WithLimits(l Limits) Option { return func(db *DB) { db.limits = l } }

// WithSignaler has the DB announce read receipts (member.read) through s.
func WithSignaler(s chat.Signaler) Option { return func(db *DB) { db.signals = s } }

var _ chat.LoginThrottle = (*DB)(nil)

// The write limit is a token bucket per user in write_buckets: a charge
// refills the bucket for the time since the last one (at PostRate, up to
// PostBurst), then takes a token. A refused write is charged too, down to
// a debt of PostBurst, so a client that keeps hammering stays refused and
// one that waits Retry-After gets through. The repeat of an accepted
// client_id is free: the charge is skipped when the message is already
// stored.
//
// The charge runs in a statement and transaction of its own (a pipeline
// segment with its own Sync, in the same round trip as the write's first
// statements), so a refused write keeps its cost when the write's own
// transaction rolls back. Its verdict goes to the session setting
// parley.write_grant as the request's grant id; the write's lock statement
// (lockRoomGrantedSQL) takes the room lock only when it finds its own
// grant there, so a refused write never waits for a room lock.
const chargeWriteSQL = chargeWriteCTE + `
	SELECT tokens, set_config('parley.write_grant', CASE WHEN tokens >= 0 THEN $6::text ELSE '' END, false) FROM verdict`

// chargeWriteCTE charges the write and leaves the bucket's tokens in
// verdict, for chargeWriteSQL and groupChargeSQL.
const chargeWriteCTE = `WITH repeat AS (
		SELECT 1 FROM messages WHERE room_id = $2::uuid AND author_id = $1::uuid AND client_id = $3::text
	), charged AS (
		INSERT INTO write_buckets AS b (user_id, tokens, updated_at)
		SELECT $1::uuid, $5::float8 - 1, clock_timestamp() WHERE NOT EXISTS (SELECT 1 FROM repeat)
		ON CONFLICT (user_id) DO UPDATE SET
			tokens = greatest(-$5::float8, least($5::float8,
				b.tokens + $4::float8 * greatest(0, extract(epoch FROM clock_timestamp() - b.updated_at))) - 1),
			updated_at = greatest(b.updated_at, clock_timestamp())
		RETURNING tokens
	), verdict AS (
		SELECT COALESCE((SELECT tokens FROM charged), 0) AS tokens
	)`

// lockRoomGrantedSQL is lockRoomSQL that takes the lock only when the
// session holds the grant $2 from chargeWriteSQL.
const lockRoomGrantedSQL = `SELECT ` + roomCols + ` FROM rooms r
	WHERE r.id = $1 AND r.deleted_at IS NULL AND current_setting('parley.write_grant', true) = $2
	FOR NO KEY UPDATE`

// writeCharge is one write's charge against its author's bucket, queued on
// a pipeline ahead of the write's own statements. The zero value charges
// nothing (no limit).
type writeCharge struct {
	on    bool
	grant string
	rate  float64
	burst int
}

// newWriteCharge prepares a charge under db's limits.
func (db *DB) newWriteCharge() writeCharge {
	if db.limits.PostRate <= 0 {
		return writeCharge{}
	}
	return writeCharge{on: true, grant: uuid.NewString(), rate: db.limits.PostRate, burst: db.limits.PostBurst}
}

// queue sends the charge and its Sync on p. roomID and clientID name a
// message whose repeat is free; clientID "" names none.
func (c writeCharge) queue(p *pgconn.Pipeline, userID, roomID, clientID string) {
	if !c.on {
		return
	}
	var client []byte
	if clientID != "" {
		client = []byte(clientID)
	}
	p.SendQueryParams(chargeWriteSQL, [][]byte{
		[]byte(userID), []byte(roomID), client,
		[]byte(strconv.FormatFloat(c.rate, 'g', -1, 64)), []byte(strconv.Itoa(c.burst)), []byte(c.grant),
	}, nil, nil, binaryResults)
	p.SendPipelineSync()
}

// queueLock sends the room lock: conditional on the grant when charging.
func (c writeCharge) queueLock(p *pgconn.Pipeline, roomID string) {
	if !c.on {
		p.SendQueryParams(lockRoomSQL, [][]byte{[]byte(roomID)}, nil, nil, binaryResults)
		return
	}
	p.SendQueryParams(lockRoomGrantedSQL, [][]byte{[]byte(roomID), []byte(c.grant)}, nil, nil, binaryResults)
}

// verdict reads the charge's result (and its Sync) from p: nil when the
// write may go ahead, ETooMany with the wait otherwise.
func (c writeCharge) verdict(p *pgconn.Pipeline, tm *pgtype.Map) error {
	if !c.on {
		return nil
	}
	var tokens float64
	var grant string
	if err := pipeRow(p, tm, &tokens, &grant); err != nil {
		return dbError(err, "charge write")
	}
	if err := pipeSync(p); err != nil {
		return dbError(err, "charge write")
	}
	return c.refusal(tokens)
}

// refusal is nil when the bucket held a token for this request (it holds
// tokens >= 0 after the charge), else ETooMany with the time until it holds
// a whole token again, which the next request needs.
func (c writeCharge) refusal(tokens float64) error {
	if tokens >= 0 {
		return nil
	}
	wait := time.Duration(math.Ceil((1-tokens)/c.rate*1000)) * time.Millisecond
	return chat.TooMany(wait, "too many writes; retry after the time in Retry-After")
}

// binaryResults asks for every result column in binary, as pgx decodes.
var binaryResults = []int16{1}

// pipeRow reads the next result of p and scans its one row into dst;
// pgx.ErrNoRows when it has none.
func pipeRow(p *pgconn.Pipeline, tm *pgtype.Map, dst ...any) error {
	rr, err := pipeResult(p)
	if err != nil {
		return err
	}
	r := rr.Read()
	if r.Err != nil {
		return r.Err
	}
	if len(r.Rows) == 0 {
		return pgx.ErrNoRows
	}
	if len(r.Rows[0]) != len(dst) {
		return fmt.Errorf("pipeline: %d columns, want %d", len(r.Rows[0]), len(dst))
	}
	for i, fd := range r.FieldDescriptions {
		if err := tm.Scan(fd.DataTypeOID, fd.Format, r.Rows[0][i], dst[i]); err != nil {
			return fmt.Errorf("pipeline: scan column %s: %w", fd.Name, err)
		}
	}
	return nil
}

// pipeExec reads the next result of p, which has no rows.
func pipeExec(p *pgconn.Pipeline) error {
	rr, err := pipeResult(p)
	if err != nil {
		return err
	}
	_, err = rr.Close()
	return err
}

// pipeResult is the next result of p, which must be a statement's.
func pipeResult(p *pgconn.Pipeline) (*pgconn.ResultReader, error) {
	res, err := p.GetResults()
	if err != nil {
		return nil, err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return nil, fmt.Errorf("pipeline: got %T, want a result", res)
	}
	return rr, nil
}

// pipeSync reads the next Sync of p.
func pipeSync(p *pgconn.Pipeline) error {
	res, err := p.GetResults()
	if err != nil {
		return err
	}
	if _, ok := res.(*pgconn.PipelineSync); !ok {
		return fmt.Errorf("pipeline: got %T, want a sync", res)
	}
	return nil
}

// ChargeWrite charges one write by userID against the write limit, in a
// statement of its own that commits whatever follows: for writes that do
// not pipeline the charge with their own statements (edits, deletes,
// reactions). Call it before the write's transaction; ETooMany when the
// limit refuses the write.
func (db *DB) ChargeWrite(ctx context.Context, userID string) error {
	c := db.newWriteCharge()
	if !c.on {
		return nil
	}
	var tokens float64
	var grant string
	err := db.pool.QueryRow(ctx, chargeWriteSQL, userID, uuid.Nil.String(), nil, c.rate, c.burst, c.grant).Scan(&tokens, &grant)
	if err != nil {
		return dbError(err, "charge write")
	}
	return c.refusal(tokens)
}

// loginKeys are the failed-login counters a login attempt counts against,
// with their limits; only keys with a limit.
func (db *DB) loginKeys(username, clientIP string) (keys []string, limits []int32) {
	if n := db.limits.LoginFailuresPerUser; n > 0 {
		keys, limits = append(keys, "u "+username), append(limits, int32(n))
	}
	if n := db.limits.LoginFailures; n > 0 {
		// The address holds no space, so the key is unambiguous.
		keys, limits = append(keys, "ip "+clientIP+" "+username), append(limits, int32(n))
	}
	return keys, limits
}

// ReserveLogin counts a failed login for username from clientIP before its
// password is checked, or refuses it (ETooMany with the time until the
// window ends) when a limit is reached, counting nothing.
func (db *DB) ReserveLogin(ctx context.Context, username, clientIP string) error {
	keys, limits := db.loginKeys(username, clientIP)
	if len(keys) == 0 {
		return nil
	}
	var wait float64
	err := db.pool.QueryRow(ctx, `SELECT reserve_login($1, $2, $3)`, keys, limits, db.limits.LoginWindow).Scan(&wait)
	if err != nil {
		return dbError(err, "reserve login")
	}
	if wait > 0 {
		return chat.TooMany(time.Duration(math.Ceil(wait*1000))*time.Millisecond,
			"too many failed logins for this username; retry after the time in Retry-After")
	}
	return nil
}

// ReleaseLogin takes back a reservation whose login did not fail (it
// succeeded, or was not decided).
func (db *DB) ReleaseLogin(ctx context.Context, username, clientIP string) error {
	keys, _ := db.loginKeys(username, clientIP)
	if len(keys) == 0 {
		return nil
	}
	_, err := db.pool.Exec(ctx, `WITH l AS (
			SELECT key FROM login_failures WHERE key = ANY ($1) ORDER BY key FOR UPDATE
		)
		UPDATE login_failures f SET failures = f.failures - 1 FROM l
		WHERE f.key = l.key AND f.failures > 0 AND f.expires_at > clock_timestamp()`, keys)
	return dbError(err, "release login")
}

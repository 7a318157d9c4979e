package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/chat"
)

// SignalChannel carries the ephemeral events (typing, member.read,
// presence) between replicas, apart from NotifyChannel: a burst of typing
// never sits between a replica and its durable events.
const SignalChannel = "parley_signals"

// Signal batching.
const (
	// DefaultSignalInterval is how often a replica sends what it
	// gathered: one notifying transaction per interval at most, however
	// many typists.
	DefaultSignalInterval = 25 * time.Millisecond
	// DefaultMaxQueueUsage is the fill of the notification queue (see
	// pg_notification_queue_usage) above which typing and member.read are
	// dropped: a full queue fails every notifying commit, posts included.
	DefaultMaxQueueUsage = 0.5
	// maxSignalPayload keeps each NOTIFY payload under Postgres's 8000
	// bytes, header line included; a batch that does not fit is split.
	maxSignalPayload = 7900
	// maxPendingSignals bounds what waits for the next flush; more is
	// dropped.
	maxPendingSignals = 20000
	// signalTimeout bounds one flush, heartbeat or claim.
	signalTimeout = 5 * time.Second
)

// Reasons signals are dropped, for metrics.
const (
	DropCoalesced = "coalesced"  // typing within chat.TypingInterval on this replica
	DropBacklog   = "backlog"    // more than maxPendingSignals waiting
	DropQueueFull = "queue_full" // the notification queue is too full
	DropFailed    = "failed"     // the notifying transaction failed
)

// SignalObserver hears what Signals does, for metrics. Its methods must be
// cheap and safe for concurrent use.
type SignalObserver interface {
	// SignalsSent reports one committed notifying transaction: how many
	// signals it carried, in how many payloads of how many bytes.
	SignalsSent(signals, payloads, bytes int)
	SignalsDropped(reason string, n int)
	// NotificationQueueUsage reports pg_notification_queue_usage().
	NotificationQueueUsage(usage float64)
}

type nopSignalObserver struct{}

func (nopSignalObserver) SignalsSent(int, int, int)      {}
func (nopSignalObserver) SignalsDropped(string, int)     {}
func (nopSignalObserver) NotificationQueueUsage(float64) {}

// SignalsConfig configures Signals; zero values take the defaults.
type SignalsConfig struct {
	Interval time.Duration
	// PresenceTimeout: a replica that stops heartbeating has its users
	// taken offline by a survivor within this long.
	PresenceTimeout time.Duration
	// PresenceGrace is the grace of a user's last stream (see
	// stream.Presence); a replica shutting down hands its users over
	// after it.
	PresenceGrace time.Duration
	MaxQueueUsage float64
	Observer      SignalObserver
}

// Signals sends this replica's ephemeral events to every replica: it
// gathers them and, every Interval, sends them in one transaction of
// NOTIFYs on SignalChannel with synchronous_commit off, so a room full of
// typists costs one commit per interval, not one per keystroke, and no
// wait for a disk flush. The same transaction records this replica's
// presence transitions, so online and offline reach every replica in the
// order they were decided. It also heartbeats for the replica and claims
// the users of replicas that died (see presence.go).
type Signals struct {
	pool      *pgxpool.Pool
	logger    *slog.Logger
	cfg       SignalsConfig
	replicaID string
	obs       SignalObserver
	// online lists this replica's online users, to register them again
	// after a survivor took them (the replica looked dead).
	online func() []string

	mu      sync.Mutex
	pending []chat.Signal
	// presence is each user's transition since the last flush (true:
	// online); opposite transitions cancel out.
	presence map[string]bool
	typed    map[typedKey]time.Time // this replica's last typing per user and room

	stop context.CancelFunc
	done chan struct{}
}

type typedKey struct{ roomID, userID string }

var (
	_ chat.Signaler      = (*Signals)(nil)
	_ chat.PresenceStore = (*Signals)(nil)
)

// NewSignals returns the signal sender of a new replica, with an id of its
// own; Start registers it.
func NewSignals(pool *pgxpool.Pool, logger *slog.Logger, cfg SignalsConfig) *Signals {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultSignalInterval
	}
	if cfg.PresenceTimeout <= 0 {
		cfg.PresenceTimeout = chat.PresenceTimeout
	}
	if cfg.PresenceGrace <= 0 {
		cfg.PresenceGrace = chat.PresenceGrace
	}
	if cfg.MaxQueueUsage <= 0 {
		cfg.MaxQueueUsage = DefaultMaxQueueUsage
	}
	s := &Signals{pool: pool, logger: logger, cfg: cfg, replicaID: uuid.NewString(), obs: cfg.Observer,
		online: func() []string { return nil }, presence: make(map[string]bool), typed: make(map[typedKey]time.Time)}
	if s.obs == nil {
		s.obs = nopSignalObserver{}
	}
	return s
}

// ReplicaID is this replica's id in presence_replicas.
func (s *Signals) ReplicaID() string { return s.replicaID }

// SetOnline gives the list of this replica's online users (see
// stream.Presence.Online); call it before Start.
func (s *Signals) SetOnline(online func() []string) { s.online = online }

// Typing gathers a typing signal, unless this replica gathered one for
// the user and room within its typing window (receivers drop repeats from
// other replicas; see stream.Ephemeral).
func (s *Signals) Typing(roomID, userID string) {
	now := time.Now()
	k := typedKey{roomID, userID}
	s.mu.Lock()
	if last, ok := s.typed[k]; ok && now.Sub(last) < s.typingWindow() {
		s.mu.Unlock()
		s.obs.SignalsDropped(DropCoalesced, 1)
		return
	}
	s.typed[k] = now
	s.mu.Unlock()
	s.add(chat.Signal{Type: chat.EventTyping, RoomID: roomID, UserID: userID})
}

// MemberRead gathers a member.read signal.
func (s *Signals) MemberRead(roomID, userID string, lastReadSeq int64) {
	s.add(chat.Signal{Type: chat.EventMemberRead, RoomID: roomID, UserID: userID, LastReadSeq: lastReadSeq})
}

func (s *Signals) add(sig chat.Signal) {
	s.mu.Lock()
	if len(s.pending) >= maxPendingSignals {
		s.mu.Unlock()
		s.obs.SignalsDropped(DropBacklog, 1)
		return
	}
	s.pending = append(s.pending, sig)
	s.mu.Unlock()
}

// UserOnline gathers userID's first stream on this replica.
func (s *Signals) UserOnline(userID string) { s.transition(userID, true) }

// UserOffline gathers userID's last stream on this replica having closed.
func (s *Signals) UserOffline(userID string) { s.transition(userID, false) }

func (s *Signals) transition(userID string, online bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.presence[userID]; ok && prev != online {
		// Back before anything was sent: nothing changed.
		delete(s.presence, userID)
		return
	}
	s.presence[userID] = online
}

// typingWindow is how long this replica holds back a user's next typing
// in a room: chat.TypingInterval, and a little more. Receivers drop a
// typing stamped (by the database, at the flush) less than the interval
// after the last one they let through; two keystrokes exactly 2 s apart
// could be stamped a little closer than that (the first waited longer for
// its flush), and the second, the only one of that window, would be lost.
func (s *Signals) typingWindow() time.Duration {
	return chat.TypingInterval + 2*s.cfg.Interval + typingSlack
}

// typingSlack covers the jitter of a flush's commit.
const typingSlack = 50 * time.Millisecond

// Start registers the replica, claims the users of replicas that died,
// and sends gathered signals and heartbeats until Close.
func (s *Signals) Start(ctx context.Context) error {
	if err := s.register(ctx); err != nil {
		return err
	}
	if err := s.claimDead(ctx); err != nil {
		s.logger.Warn("presence: claim dead replicas", "err", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		s.run(rctx)
	}()
	return nil
}

func (s *Signals) run(ctx context.Context) {
	flush := time.NewTicker(s.cfg.Interval)
	defer flush.Stop()
	beat := time.NewTicker(s.heartbeatEvery())
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			s.flush(ctx)
		case <-beat.C:
			s.heartbeat(ctx)
		}
	}
}

// Close sends what is gathered, stops, and hands this replica's users
// over: its heartbeat is set to go stale once the grace has passed, when a
// survivor takes offline whoever has not reconnected elsewhere meanwhile
// (so a rolling restart does not make everyone flap).
func (s *Signals) Close(ctx context.Context) {
	if s.stop == nil {
		return
	}
	s.stop()
	<-s.done
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), signalTimeout)
	defer cancel()
	s.flush(ctx)
	if _, err := s.pool.Exec(ctx, `UPDATE presence_replicas SET heartbeat_at = now() + ($3::bigint - $2::bigint) * interval '1 microsecond' WHERE id = $1`,
		s.replicaID, s.staleAfter().Microseconds(), s.cfg.PresenceGrace.Microseconds()); err != nil {
		s.logger.Warn("presence: hand over", "err", err)
	}
}

// flush sends what was gathered since the last flush. Typing and read
// receipts that fail are dropped (they would be stale by a retry);
// presence transitions are kept for the next flush.
func (s *Signals) flush(ctx context.Context) {
	now := time.Now()
	s.mu.Lock()
	sigs, pres := s.pending, s.presence
	s.pending, s.presence = nil, make(map[string]bool)
	for k, t := range s.typed {
		if now.Sub(t) >= s.typingWindow() {
			delete(s.typed, k)
		}
	}
	s.mu.Unlock()
	if len(sigs) == 0 && len(pres) == 0 {
		return
	}
	if err := s.send(ctx, sigs, pres); err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("send signals", "err", err, "signals", len(sigs), "presence", len(pres))
		}
		s.obs.SignalsDropped(DropFailed, len(sigs))
		s.mu.Lock()
		for id, online := range pres {
			if newer, ok := s.presence[id]; ok {
				if newer != online {
					delete(s.presence, id) // undone since: nothing to send
				}
				continue
			}
			s.presence[id] = online
		}
		s.mu.Unlock()
	}
}

// send runs one notifying transaction: presence transitions first (they
// decide who went online or offline across replicas), then NOTIFYs for
// those and for sigs, unless the notification queue is too full for the
// signals that can be dropped.
func (s *Signals) send(ctx context.Context, sigs []chat.Signal, pres map[string]bool) error {
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	return inNotifyTx(ctx, s.pool, func(tx pgx.Tx, usage float64) ([]string, error) {
		s.obs.NotificationQueueUsage(usage)
		var lines []string
		if len(pres) > 0 {
			online, offline, err := s.recordPresence(ctx, tx, pres)
			if err != nil {
				return nil, err
			}
			lines = appendPresence(lines, online, true)
			lines = appendPresence(lines, offline, false)
		}
		if usage >= s.cfg.MaxQueueUsage {
			s.obs.SignalsDropped(DropQueueFull, len(sigs))
			return lines, nil
		}
		for _, sig := range sigs {
			lines = append(lines, encodeSignal(sig))
		}
		return lines, nil
	}, s.obs)
}

// inNotifyTx runs fn in a transaction with synchronous_commit off, gives it
// the notification queue's usage, and NOTIFYs the lines it returns on
// SignalChannel in as few payloads as fit, all stamped with the same
// database clock.
func inNotifyTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx, usage float64) ([]string, error), obs SignalObserver) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		rctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	var usage float64
	b := &pgx.Batch{}
	// An ephemeral signal is not worth waiting for the WAL flush: a
	// crash loses at most the last few milliseconds of them.
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`SELECT pg_notification_queue_usage()`).QueryRow(func(row pgx.Row) error { return row.Scan(&usage) })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("prepare signal transaction: %w", err)
	}
	lines, err := fn(tx, usage)
	if err != nil {
		return err
	}
	payloads := splitPayloads(lines)
	size := 0
	for _, p := range payloads {
		size += len(p) + stampWidth
	}
	if len(payloads) > 0 {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, (extract(epoch FROM statement_timestamp()) * 1000000)::bigint || E'\n' || p)
			FROM unnest($2::text[]) AS p`, SignalChannel, payloads); err != nil {
			return fmt.Errorf("notify signals: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit signals: %w", err)
	}
	if len(payloads) > 0 {
		obs.SignalsSent(len(lines), len(payloads), size)
	}
	return nil
}

// stampWidth is the most bytes the header line takes: microseconds since
// the Unix epoch and a newline.
const stampWidth = committedWidth + 1

// The wire format of SignalChannel: a payload is the database's clock in
// microseconds since the Unix epoch on its first line, then one signal a
// line:
//
//	t <room_id> <user_id>                 typing
//	r <room_id> <user_id> <last_read_seq> member.read
//	p <user_id> 1|0                       presence online / offline

func encodeSignal(sig chat.Signal) string {
	switch sig.Type {
	case chat.EventTyping:
		return "t " + sig.RoomID + " " + sig.UserID
	case chat.EventMemberRead:
		return "r " + sig.RoomID + " " + sig.UserID + " " + strconv.FormatInt(sig.LastReadSeq, 10)
	}
	if sig.Online {
		return "p " + sig.UserID + " 1"
	}
	return "p " + sig.UserID + " 0"
}

func appendPresence(lines, users []string, online bool) []string {
	for _, u := range users {
		lines = append(lines, encodeSignal(chat.Signal{Type: chat.EventPresence, UserID: u, Online: online}))
	}
	return lines
}

// splitPayloads joins lines into payloads that, with their header line,
// stay under maxSignalPayload.
func splitPayloads(lines []string) []string {
	var out []string
	var b strings.Builder
	for _, l := range lines {
		if b.Len() > 0 && b.Len()+1+len(l) > maxSignalPayload-stampWidth {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// DecodeSignals parses a SignalChannel payload.
func DecodeSignals(payload string) (at time.Time, sigs []chat.Signal, err error) {
	lines := bytes.Split([]byte(payload), []byte("\n"))
	us, err := strconv.ParseInt(string(lines[0]), 10, 64)
	if err != nil || us <= 0 {
		return time.Time{}, nil, fmt.Errorf("decode signals: bad stamp %q", lines[0])
	}
	for _, l := range lines[1:] {
		f := strings.Fields(string(l))
		var sig chat.Signal
		switch {
		case len(f) == 3 && f[0] == "t":
			sig = chat.Signal{Type: chat.EventTyping, RoomID: f[1], UserID: f[2]}
		case len(f) == 4 && f[0] == "r":
			seq, err := strconv.ParseInt(f[3], 10, 64)
			if err != nil {
				return time.Time{}, nil, fmt.Errorf("decode signals: bad seq in %q", l)
			}
			sig = chat.Signal{Type: chat.EventMemberRead, RoomID: f[1], UserID: f[2], LastReadSeq: seq}
		case len(f) == 3 && f[0] == "p" && (f[2] == "1" || f[2] == "0"):
			sig = chat.Signal{Type: chat.EventPresence, UserID: f[1], Online: f[2] == "1"}
		default:
			return time.Time{}, nil, fmt.Errorf("decode signals: bad line %q", l)
		}
		sigs = append(sigs, sig)
	}
	return time.UnixMicro(us), sigs, nil
}

// presenceRooms returns, for each user, the rooms they are a member of:
// where their presence goes.
func presenceRooms(ctx context.Context, pool *pgxpool.Pool, sigs []chat.Signal) (map[string][]string, error) {
	var users []string
	for _, sig := range sigs {
		if sig.Type == chat.EventPresence && validID(sig.UserID) {
			users = append(users, sig.UserID)
		}
	}
	if len(users) == 0 {
		return nil, nil
	}
	slices.Sort(users)
	users = slices.Compact(users)
	rows, err := pool.Query(ctx, `SELECT user_id::text, room_id::text FROM room_members WHERE user_id = ANY($1::uuid[])`, users)
	if err != nil {
		return nil, fmt.Errorf("read presence rooms: %w", err)
	}
	out := make(map[string][]string, len(users))
	var u, r string
	_, err = pgx.ForEachRow(rows, []any{&u, &r}, func() error {
		out[u] = append(out[u], r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read presence rooms: %w", err)
	}
	return out, nil
}

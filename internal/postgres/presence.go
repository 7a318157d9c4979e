package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Presence across replicas (the tables of migration 00010). A replica
// holds a session row for every user with a stream open on it; a user is
// online while any row of theirs exists. Whoever adds a user's first row
// announces them online, and whoever deletes the last announces them
// offline, inside the same transaction as the NOTIFY, under a per-user
// advisory lock: the decisions about one user are serialized, and reach
// every replica in the order they were made.
//
// A replica heartbeats every PresenceTimeout/6 and counts as dead once its
// heartbeat is PresenceTimeout/2 old. Every replica looks for dead ones at
// each heartbeat; claiming one locks its row (FOR UPDATE SKIP LOCKED, so a
// second survivor skips it) and deletes it with its sessions, so exactly
// one survivor announces the departures, within 2/3 of the timeout of the
// death.

func (s *Signals) heartbeatEvery() time.Duration { return s.cfg.PresenceTimeout / 6 }
func (s *Signals) staleAfter() time.Duration     { return s.cfg.PresenceTimeout / 2 }

// register adds this replica's heartbeat row.
func (s *Signals) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO presence_replicas (id, heartbeat_at) VALUES ($1, now())
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, s.replicaID)
	if err != nil {
		return fmt.Errorf("register replica presence: %w", dbError(err, "register replica"))
	}
	return nil
}

// heartbeat keeps this replica alive and claims dead ones. A replica whose
// row a survivor took (it could not heartbeat for too long) registers
// again with its users, who are announced online again.
func (s *Signals) heartbeat(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	tag, err := s.pool.Exec(hctx, `UPDATE presence_replicas SET heartbeat_at = now() WHERE id = $1`, s.replicaID)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("presence: heartbeat", "err", err)
		}
		return
	}
	if tag.RowsAffected() == 0 {
		s.logger.Warn("presence: this replica was taken for dead; registering again")
		if err := s.register(ctx); err != nil {
			s.logger.Warn("presence: register", "err", err)
			return
		}
		for _, u := range s.online() {
			s.UserOnline(u)
		}
	}
	if err := s.claimDead(ctx); err != nil && ctx.Err() == nil {
		s.logger.Warn("presence: claim dead replicas", "err", err)
	}
}

// lockUsersSQL takes the advisory locks of users $1, in one order for
// every transaction, so two of them never deadlock.
const lockUsersSQL = `SELECT pg_advisory_xact_lock(k) FROM
	(SELECT DISTINCT hashtextextended(u, 0) AS k FROM unnest($1::text[]) AS u ORDER BY k) AS l`

// recordPresence applies this replica's transitions (true: the user's
// first stream here opened; false: their last one closed) and returns the
// users that went online and offline across all replicas.
func (s *Signals) recordPresence(ctx context.Context, tx pgx.Tx, pres map[string]bool) (online, offline []string, err error) {
	var users, joins, leaves []string
	for u, on := range pres {
		if !validID(u) {
			continue
		}
		users = append(users, u)
		if on {
			joins = append(joins, u)
		} else {
			leaves = append(leaves, u)
		}
	}
	slices.Sort(users)
	b := &pgx.Batch{}
	b.Queue(lockUsersSQL, users)
	if len(joins) > 0 {
		// Inserted only while this replica is registered: after a survivor
		// took it for dead, heartbeat registers it again first.
		b.Queue(`WITH ins AS (
				INSERT INTO presence_sessions (user_id, replica_id)
				SELECT u, $1 FROM unnest($2::uuid[]) AS u WHERE EXISTS (SELECT 1 FROM presence_replicas WHERE id = $1)
				ON CONFLICT DO NOTHING RETURNING user_id)
			SELECT user_id::text FROM ins
			WHERE NOT EXISTS (SELECT 1 FROM presence_sessions p WHERE p.user_id = ins.user_id AND p.replica_id <> $1)`,
			s.replicaID, joins).Query(collectIDs(&online))
	}
	if len(leaves) > 0 {
		b.Queue(`WITH del AS (
				DELETE FROM presence_sessions WHERE replica_id = $1 AND user_id = ANY($2::uuid[]) RETURNING user_id)
			SELECT user_id::text FROM del
			WHERE NOT EXISTS (SELECT 1 FROM presence_sessions p WHERE p.user_id = del.user_id AND p.replica_id <> $1)`,
			s.replicaID, leaves).Query(collectIDs(&offline))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("record presence: %w", err)
	}
	return online, offline, nil
}

// collectIDs appends each row's one text column to ids.
func collectIDs(ids *[]string) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var id string
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
			*ids = append(*ids, id)
			return nil
		})
		return err
	}
}

// claimDead takes over the replicas whose heartbeat went stale: deletes
// their sessions and announces offline those of their users online
// nowhere else.
func (s *Signals) claimDead(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	var dead, offline []string
	err := inNotifyTx(ctx, s.pool, func(tx pgx.Tx, _ float64) ([]string, error) {
		rows, err := tx.Query(ctx, `SELECT id::text FROM presence_replicas
			WHERE id <> $1 AND heartbeat_at < now() - $2 * interval '1 microsecond' FOR UPDATE SKIP LOCKED`, s.replicaID, s.staleAfter().Microseconds())
		if err != nil {
			return nil, fmt.Errorf("claim dead replicas: %w", err)
		}
		if err := collectIDs(&dead)(rows); err != nil {
			return nil, fmt.Errorf("claim dead replicas: %w", err)
		}
		if len(dead) == 0 {
			return nil, nil
		}
		var users []string
		rows, err = tx.Query(ctx, `SELECT DISTINCT user_id::text FROM presence_sessions WHERE replica_id = ANY($1::uuid[])`, dead)
		if err != nil {
			return nil, fmt.Errorf("read dead replicas' users: %w", err)
		}
		if err := collectIDs(&users)(rows); err != nil {
			return nil, fmt.Errorf("read dead replicas' users: %w", err)
		}
		b := &pgx.Batch{}
		b.Queue(lockUsersSQL, users)
		b.Queue(`WITH del AS (DELETE FROM presence_sessions WHERE replica_id = ANY($1::uuid[]) RETURNING user_id)
			SELECT DISTINCT user_id::text FROM del
			WHERE NOT EXISTS (SELECT 1 FROM presence_sessions p WHERE p.user_id = del.user_id AND p.replica_id <> ALL($1::uuid[]))`,
			dead).Query(collectIDs(&offline))
		b.Queue(`DELETE FROM presence_replicas WHERE id = ANY($1::uuid[])`, dead)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, fmt.Errorf("take dead replicas' users offline: %w", err)
		}
		return appendPresence(nil, offline, false), nil
	}, s.obs)
	if err == nil && len(dead) > 0 {
		s.logger.Info("presence: claimed dead replicas", "replicas", len(dead), "offline", len(offline))
	}
	return err
}

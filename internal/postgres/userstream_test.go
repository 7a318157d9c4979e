package postgres_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/pgtest"
	"github.com/parley-chat/parley/internal/postgres"
)

// MustUser adds a user to the fixture's database.
func (f *eventFixture) MustUser(tb testing.TB) string {
	tb.Helper()
	id := uuid.NewString()
	u := chat.User{ID: id, Username: "u" + strings.ReplaceAll(id, "-", "")[:12], DisplayName: "User", CreatedAt: time.Now().UTC()}
	if err := f.db.CreateUser(tb.Context(), u, "hash"); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return id
}

func mustBase(tb testing.TB, f *eventFixture, userID string, old uint64, tracked ...chat.RoomPosition) chat.StreamBase {
	tb.Helper()
	b, err := f.db.StreamBase(tb.Context(), userID, old, 0, tracked)
	if err != nil {
		tb.Fatalf("stream base: %v", err)
	}
	return b
}

func baseRoom(b chat.StreamBase, roomID string) (chat.BaseRoom, bool) {
	for _, r := range b.Rooms {
		if r.RoomID == roomID {
			return r, true
		}
	}
	return chat.BaseRoom{}, false
}

// TestMembershipPeriods: joins and leaves are kept as periods after the
// member row is gone, and the stream base reports them.
func TestMembershipPeriods(t *testing.T) {
	t.Parallel()
	f := MustEventFixture(t, 4)
	ctx := t.Context()
	room := f.MustRoom(t)
	bob := f.MustUser(t)
	if _, err := f.db.JoinRoom(ctx, bob, room); err != nil { // seq 2
		t.Fatal(err)
	}
	f.MustPost(t, room, "hello") // 3
	before := mustBase(t, f, bob, 0)
	if err := f.db.LeaveRoom(ctx, bob, room); err != nil { // 4
		t.Fatal(err)
	}
	if _, err := f.db.JoinRoom(ctx, bob, room); err != nil { // 5
		t.Fatal(err)
	}
	rows, err := f.db.Pool().Query(ctx, `SELECT joined_seq, COALESCE(left_seq, 0) FROM room_member_periods
		WHERE user_id = $1 AND room_id = $2 ORDER BY joined_seq`, bob, room)
	if err != nil {
		t.Fatal(err)
	}
	periods, err := pgx.CollectRows(rows, pgx.RowToStructByPos[chat.Period])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(periods), "[{2 4} {5 0}]"; got != want {
		t.Fatalf("periods %s, want %s", got, want)
	}
	// From a horizon before the leave, both periods may still owe events.
	b := mustBase(t, f, bob, before.Horizon)
	r, ok := baseRoom(b, room)
	if !ok || r.LastSeq != 5 || r.Tracked != -1 {
		t.Fatalf("base %+v: want the room with last seq 5, untracked", b)
	}
	if r.OldBase > 3 || r.Base < r.OldBase || r.Base > 5 {
		t.Errorf("bases old %d, new %d: want old <= 3 (the leave came after the old horizon) <= new <= 5", r.OldBase, r.Base)
	}
	if r.OldBase < 4 && fmt.Sprint(r.Periods) != "[{2 4} {5 0}]" {
		t.Errorf("periods %v, want both", r.Periods)
	}
	// A tracked position comes back as given.
	ord := r.Ordinal
	b = mustBase(t, f, bob, b.Horizon, chat.RoomPosition{Ordinal: ord, Seq: 2})
	if r, _ := baseRoom(b, room); r.Tracked != 2 || fmt.Sprint(r.Periods) != "[{2 4} {5 0}]" {
		t.Errorf("tracked at 2: %+v, want tracked 2 and both periods", r)
	}
	// A user who was never a member has no rooms.
	if b := mustBase(t, f, f.MustUser(t), 0); len(b.Rooms) != 0 || b.Horizon == 0 {
		t.Errorf("stranger's base %+v: want a horizon and no rooms", b)
	}
}

// TestStreamBaseHorizon: an open transaction holds the horizon back, so
// an event committed after it began stays above the base; and a base under
// a past horizon never changes.
func TestStreamBaseHorizon(t *testing.T) {
	t.Parallel()
	f := MustEventFixture(t, 4)
	ctx := t.Context()
	room := f.MustRoom(t)
	f.MustPost(t, room, "one") // 2

	hold, err := f.db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx) //nolint:errcheck
	var held uint64
	if err := hold.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	seq := f.MustPost(t, room, "two") // 3, committed while the hold is open
	first := mustBase(t, f, f.user, 0)
	if first.Horizon > held {
		t.Fatalf("horizon %d passed the open transaction %d", first.Horizon, held)
	}
	r1, ok := baseRoom(first, room)
	if !ok || r1.LastSeq != seq || r1.Base >= seq || r1.OldBase != r1.Base {
		t.Fatalf("base %+v: want last seq %d, base below it, old base = base", r1, seq)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	f.MustPost(t, room, "three") // 4
	second := mustBase(t, f, f.user, first.Horizon)
	r2, _ := baseRoom(second, room)
	if r2.OldBase != r1.Base {
		t.Errorf("base under horizon %d moved from %d to %d", first.Horizon, r1.Base, r2.OldBase)
	}
	if second.Horizon < first.Horizon || r2.Base < r2.OldBase {
		t.Errorf("horizon went from %d to %d, base from %d to %d: want neither to go back", first.Horizon, second.Horizon, r2.OldBase, r2.Base)
	}
}

// TestMigratePeriodsFromLog: migration 00005 derives the membership
// periods of existing rooms from their logged member events.
func TestMigratePeriodsFromLog(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := MustPool(t, pgtest.NewEmptyDB(t))
	if err := postgres.Migrate(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	version := func() int {
		var v int
		if err := pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for version() >= 5 {
		if err := postgres.MigrateDown(ctx, pool, nil); err != nil {
			t.Fatal(err)
		}
	}
	owner, bob := uuid.NewString(), uuid.NewString()
	room := uuid.NewString()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, 'owner', 'O', 'h'), ($2, 'bob', 'B', 'h')`, []any{owner, bob}},
		{`INSERT INTO rooms (id, name, visibility, owner_id, last_seq) VALUES ($1, 'r', 'public', $2, 6)`, []any{room, owner}},
		{`INSERT INTO room_events (room_id, seq, type, data, subject_id) VALUES
			($1, 1, 'member.joined', '{}', $2), ($1, 2, 'member.joined', '{}', $3), ($1, 3, 'message', '{}', $2),
			($1, 4, 'member.left', '{}', $3), ($1, 5, 'member.joined', '{}', $3), ($1, 6, 'message', '{}', $3)`, []any{room, owner, bob}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	if err := postgres.Migrate(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT user_id::text, joined_seq, COALESCE(left_seq, 0) FROM room_member_periods WHERE room_id = $1 ORDER BY joined_seq`, room)
	if err != nil {
		t.Fatal(err)
	}
	type period struct {
		User         string
		Joined, Left int64
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[period])
	if err != nil {
		t.Fatal(err)
	}
	want := []period{{owner, 1, 0}, {bob, 2, 4}, {bob, 5, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("periods %v, want %v", got, want)
	}
}

// TestStreamBaseCapped: HeldHorizons reads the hx of a room's next event,
// and a StreamBase capped there keeps that event above the base while the
// uncapped one passes it.
func TestStreamBaseCapped(t *testing.T) {
	t.Parallel()
	f := MustEventFixture(t, 4)
	ctx := t.Context()
	room := f.MustRoom(t)
	f.MustPost(t, room, "one") // 2
	f.MustPost(t, room, "two") // 3
	r, ok := baseRoom(mustBase(t, f, f.user, 0), room)
	if !ok {
		t.Fatal("the room is not in the user's base")
	}
	ord := r.Ordinal
	// Other tests' transactions may hold the horizon below seq 3 a while.
	var now, hx uint64
	for deadline := time.Now().Add(10 * time.Second); ; {
		h, next, err := f.db.HeldHorizons(ctx, []chat.RoomPosition{{Ordinal: ord, Seq: 2}, {Ordinal: ord + 1<<40, Seq: 1}})
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		if hx, ok = next[ord]; len(next) != 1 || !ok {
			t.Fatalf("next %v: want the room's seq 3 alone", next)
		}
		if now = h; hx < now {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("horizon %d still not past seq 3's hx %d", now, hx)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r, _ := baseRoom(mustBase(t, f, f.user, 0), room); r.Base != 3 {
		t.Fatalf("uncapped base %d, want 3", r.Base)
	}
	capped, err := f.db.StreamBase(ctx, f.user, 0, hx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := baseRoom(capped, room); capped.Horizon != hx || rc.Base != 2 {
		t.Errorf("capped at %d: horizon %d, base %d; want the cap and base 2", hx, capped.Horizon, rc.Base)
	}
	// A cap above the horizon changes nothing.
	above, err := f.db.StreamBase(ctx, f.user, 0, now+1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ra, _ := baseRoom(above, room); above.Horizon > now+1000 || above.Horizon < now || ra.Base != 3 {
		t.Errorf("capped above: horizon %d, base %d; want the horizon itself and base 3", above.Horizon, ra.Base)
	}
	// A user with no rooms gets the cap too.
	if lone, err := f.db.StreamBase(ctx, f.MustUser(t), 0, hx, nil); err != nil || lone.Horizon != hx {
		t.Errorf("user without rooms, capped at %d: horizon %d, %v", hx, lone.Horizon, err)
	}
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/parley-chat/parley/db"

	"github.com/parley-chat/parley/internal/logs"
)

// Migrate applies the pending migrations of db/migrations. Replicas starting
// at once take turns through a session advisory lock: one migrates, the
// others wait and find nothing left to apply.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	ctx = withoutDeadline(ctx) // a migration may rightly take minutes
	logger = migrationLogger(logger)
	p, err := newMigrationProvider(pool)
	if err != nil {
		return err
	}
	defer p.Close()
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "source", r.Source.Path, logs.Millis("duration", r.Duration))
	}
	version, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	logger.Info("database schema up to date", "version", version, "applied", len(results))
	return nil
}

// MigrateDown undoes the most recently applied migration.
func MigrateDown(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	ctx = withoutDeadline(ctx) // a migration may rightly take minutes
	logger = migrationLogger(logger)
	p, err := newMigrationProvider(pool)
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return errors.New("undo migration: no migration applied")
	}
	if err != nil {
		return fmt.Errorf("undo migration: %w", err)
	}
	logger.Info("migration undone", "version", res.Source.Version, "source", res.Source.Path, logs.Millis("duration", res.Duration))
	return nil
}

// MigrationStatus writes a table of the migrations and whether each is
// applied.
func MigrationStatus(ctx context.Context, pool *pgxpool.Pool, w io.Writer) error {
	ctx = withoutDeadline(ctx) // a migration may rightly take minutes
	p, err := newMigrationProvider(pool)
	if err != nil {
		return err
	}
	defer p.Close()
	statuses, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("read migration status: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tSOURCE")
	for _, s := range statuses {
		applied := "-"
		if s.State == goose.StateApplied {
			applied = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, applied, s.Source.Path)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write migration status: %w", err)
	}
	return nil
}

// newMigrationProvider returns a goose provider over the pool. Close it to release
// its database/sql handle; the pool stays open.
func newMigrationProvider(pool *pgxpool.Pool) (*goose.Provider, error) {
	fsys, err := fs.Sub(db.Migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open migrations: %w", err)
	}
	// goose's default retries the lock every 5 s, which would start a
	// waiting replica seconds late; retry every second for up to 5 minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

func migrationLogger(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}

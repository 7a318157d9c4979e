package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/parley-chat/parley/internal/httpapi"
	"github.com/parley-chat/parley/internal/postgres"
)

// migrate runs "parley migrate up|down|status" with serve's database
// settings (the private cluster included); it needs no JWT secret.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("want up, down or status")
	}
	action := args[0]
	// Refuse an unknown action before starting anything (the private
	// cluster included).
	if action != "up" && action != "down" && action != "status" {
		return fmt.Errorf("unknown action %q: want up, down or status", action)
	}
	cfg, err := parseConfig("migrate "+action, args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	if err := cfg.validate(false); err != nil {
		return err
	}
	m := &Main{Config: cfg, Logger: newLogger(stderr)}
	defer m.Close(context.WithoutCancel(ctx))
	url := cfg.DatabaseURL
	if url == "" {
		if url, err = m.startCluster(ctx); err != nil {
			return err
		}
	}
	if m.pool, err = postgres.OpenPool(ctx, url, 2, 0); err != nil {
		return err
	}
	switch action {
	case "up":
		return postgres.Migrate(ctx, m.pool, m.Logger)
	case "down":
		return postgres.MigrateDown(ctx, m.pool, m.Logger)
	case "status":
		return postgres.MigrationStatus(ctx, m.pool, stdout)
	}
	return fmt.Errorf("unknown action %q: want up, down or status", action)
}

// printOpenAPI prints the API's OpenAPI 3.1 document, or with the argument
// 3.0 its 3.0.3 downgrade for older generators; it needs no database.
func printOpenAPI(args []string, w io.Writer) error {
	doc := httpapi.New(httpapi.Options{}).OpenAPI()
	var (
		b   []byte
		err error
	)
	switch {
	case len(args) == 0:
		b, err = doc.YAML()
	case len(args) == 1 && args[0] == "3.0":
		b, err = doc.DowngradeYAML()
	default:
		return usageError(fmt.Sprintf("openapi takes no argument or 3.0, not %q", strings.Join(args, " ")))
	}
	if err != nil {
		return fmt.Errorf("render openapi: %w", err)
	}
	_, err = w.Write(b)
	return err
}

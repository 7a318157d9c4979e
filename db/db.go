// Package db holds Parley's SQL migrations, embedded into the binary.
package db

import "embed"

// Migrations holds the goose migrations under migrations/.
//
//go:embed migrations/*.sql
var Migrations embed.FS

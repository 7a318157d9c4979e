// Package limits tests Parley's limits end to end: rate limits across
// replicas, the bound on password hashing, and the stream caps.
package limits

import (
	"testing"

	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

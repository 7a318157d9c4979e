// Package logs holds the conventions Parley's log lines share, so every
// package writes a value the same way.
package logs

import (
	"log/slog"
	"time"
)

// Millis is a duration as key_ms, in milliseconds with microsecond
// precision: slog would write a time.Duration as raw nanoseconds in JSON.
func Millis(key string, d time.Duration) slog.Attr {
	return slog.Float64(key+"_ms", float64(d.Microseconds())/1000)
}

package logs_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/logs"
)

func TestMillis(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want float64
	}{
		{"Zero", 0, 0},
		{"SubMillisecond", 412 * time.Microsecond, 0.412},
		{"Seconds", 2*time.Second + 5*time.Millisecond, 2005},
		{"NanosecondsDropped", 1500*time.Microsecond + 999, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "x", logs.Millis("duration", tt.d))
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			if got, ok := line["duration_ms"].(float64); !ok || got != tt.want {
				t.Errorf("duration_ms = %v in %s, want %v", line["duration_ms"], buf.Bytes(), tt.want)
			}
		})
	}
}

package bench

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name string
		obs  []time.Duration
		q    float64
		want time.Duration
	}{
		{"Empty", nil, 0.5, 0},
		{"One", []time.Duration{3 * time.Millisecond}, 0.99, 3 * time.Millisecond},
		{"Median", []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, 0.5, 2 * time.Millisecond},
		{"Max", []time.Duration{time.Millisecond, 2 * time.Millisecond, 40 * time.Second}, 1, 40 * time.Second},
		{"SubMicrosecond", []time.Duration{500 * time.Nanosecond}, 0.5, 500 * time.Nanosecond},
		{"Negative", []time.Duration{-time.Millisecond}, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, d := range tt.obs {
				h.Observe(d)
			}
			got := h.Quantile(tt.q)
			// Buckets are within 1/subBuckets of their values.
			if diff := got - tt.want; diff < 0 || float64(diff) > float64(tt.want)/subBuckets+float64(unit) {
				t.Fatalf("quantile %g = %s, want %s (within one bucket above)", tt.q, got, tt.want)
			}
		})
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every duration falls in a bucket whose upper bound is above it and
	// within 1% of it, and buckets ascend.
	for d := time.Duration(1); d < 5*time.Minute; d = d*21/20 + 1 {
		i := bucket(d)
		if up := upper(i); up < d || float64(up-d) > float64(d)/subBuckets*2+float64(unit) {
			t.Fatalf("%s in bucket %d up to %s", d, i, up)
		}
		if i > 0 && upper(i-1) > d {
			t.Fatalf("%s in bucket %d, but bucket %d reaches %s", d, i, i-1, upper(i-1))
		}
	}
}

func TestIntAfter(t *testing.T) {
	tests := []struct {
		data, key string
		want      int64
	}{
		{`{"room_id":"r","seq":42,"body":"t=17"}`, `"seq":`, 42},
		{`{"room_id":"r","seq":42,"body":"t=17 k=1"}`, `"body":"t=`, 17},
		{`{"room_id":"r","last_read_seq":9}`, `"seq":`, 0},
		{`{"cursor":"abc"}`, `"last_seq":`, 0},
	}
	for _, tt := range tests {
		if got := intAfter([]byte(tt.data), tt.key); got != tt.want {
			t.Errorf("intAfter(%s, %s) = %d, want %d", tt.data, tt.key, got, tt.want)
		}
	}
}

package bench

import "testing"

func TestReportOK(t *testing.T) {
	clean := func() *Report {
		r := &Report{}
		r.Streams.Wanted, r.Streams.Opened = 10, 10
		r.Posts.OK = 100
		r.Deliveries.Expected, r.Deliveries.Received = 1000, 1000
		return r
	}
	tests := []struct {
		name  string
		spoil func(*Report)
		want  bool
	}{
		{"clean", func(*Report) {}, true},
		{"a stream did not open", func(r *Report) { r.Streams.Opened-- }, false},
		{"a stream ended early", func(r *Report) { r.Streams.EndedEarly = 1 }, false},
		{"a post failed", func(r *Report) { r.Posts.Failed = 1 }, false},
		{"a delivery lost", func(r *Report) { r.Deliveries.Lost = 1 }, false},
		{"a delivery duplicated", func(r *Report) { r.Deliveries.Duplicated = 1 }, false},
		{"a delivery out of order", func(r *Report) { r.Deliveries.OutOfOrder = 1 }, false},
		{"fewer received than expected", func(r *Report) { r.Deliveries.Received-- }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := clean()
			tt.spoil(r)
			if got := r.OK(); got != tt.want {
				t.Errorf("OK() = %v, want %v", got, tt.want)
			}
		})
	}
}

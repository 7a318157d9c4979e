package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets: subBuckets per power of
// two above about 1 us, so any percentile it reports is within 1/subBuckets
// (under 1%) of the true value. It is safe for concurrent use (atomic
// counters), so thousands of readers can share one without a lock.
type histogram struct {
	counts [octaves * subBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	subBits    = 7
	subBuckets = 1 << subBits
	// octaves bounds the range at unit * 2^(octaves+subBits), about 8 minutes.
	octaves = 30
	unit    = int64(time.Microsecond) / subBuckets // the finest resolution, in ns
)

// bucket is the index of d's bucket.
func bucket(d time.Duration) int {
	v := int64(d) / unit
	if v < subBuckets {
		return int(max(v, 0))
	}
	// The highest set bit selects the octave, the next subBits bits the
	// bucket within it.
	hb := 63 - bits.LeadingZeros64(uint64(v))
	oct := hb - subBits + 1
	idx := oct*subBuckets + int((v>>(oct-1))&(subBuckets-1))
	return min(idx, octaves*subBuckets-1)
}

// upper is the largest duration bucket i holds.
func upper(i int) time.Duration {
	oct, sub := i/subBuckets, int64(i%subBuckets)
	if oct == 0 {
		return time.Duration((sub + 1) * unit)
	}
	return time.Duration(((int64(subBuckets) + sub + 1) << (oct - 1)) * unit)
}

// Observe records one duration.
func (h *histogram) Observe(d time.Duration) {
	h.counts[bucket(d)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Count is how many durations were recorded.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Quantile is the q-quantile (0 < q <= 1) of the recorded durations, as
// the upper bound of its bucket (never above the maximum seen).
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(upper(i), time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// Latency is a summary of a histogram, in milliseconds for readers.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *histogram) summary() Latency {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return Latency{
		Count: h.Count(),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(time.Duration(h.max.Load())),
	}
}

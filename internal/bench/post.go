package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/api"
)

// maxInFlight bounds the open-loop posts awaiting an answer; a post that
// would exceed it is counted as skipped (the client, not the server, fell
// behind) rather than queued, so the schedule stays the schedule.
const maxInFlight = 2048

// post posts for Duration: open loop at Rate over the rooms in turn, or
// closed loop with Posters posters.
func (b *bench) post(ctx context.Context) {
	if b.cfg.Duration <= 0 || (b.cfg.Rate == 0 && b.cfg.Posters == 0) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if b.cfg.Rate == 0 {
		for c := range b.cfg.Posters {
			wg.Go(func() {
				for k := c; ctx.Err() == nil; k += b.cfg.Posters {
					// A post under way when time is up finishes, so every
					// committed post is counted.
					b.postOne(context.WithoutCancel(ctx), c%len(b.plan.rooms), k)
				}
			})
		}
		return
	}
	interval := time.Duration(float64(time.Second) / b.cfg.Rate)
	sem := make(chan struct{}, maxInFlight)
	start := time.Now()
	for k := 0; ; k++ {
		// Post k is due at start + k*interval, whatever happened before.
		if wait := time.Until(start.Add(time.Duration(k) * interval)); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		} else if ctx.Err() != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			b.st.fail("post: skipped, too many in flight")
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			b.postOne(context.WithoutCancel(ctx), k%len(b.plan.rooms), k)
		})
	}
}

// postOne posts message k into room r as its owner, through the replicas in
// turn. The body starts with the send time, which receivers subtract from
// their clock (same host) for the delivery latency.
func (b *bench) postOne(ctx context.Context, r, k int) {
	rm := b.plan.rooms[r]
	base := b.cfg.URLs[k%len(b.cfg.URLs)]
	sent := time.Now()
	body := "t=" + strconv.FormatInt(sent.UnixNano(), 10) + " k=" + strconv.Itoa(k)
	if pad := b.cfg.BodyBytes - len(body) - 1; pad > 0 {
		body += " " + strings.Repeat("x", pad)
	}
	resp, err := b.client(base, rm.poster).PostMessageWithResponse(ctx, rm.id, api.PostMessageRequest{Body: body})
	if err != nil {
		if ctx.Err() != nil {
			return // the run ended during a closed-loop post
		}
		b.st.postFailed.Add(1)
		b.st.fail("post: " + errClass(err))
		return
	}
	b.st.post.Observe(time.Since(sent))
	if resp.JSON201 == nil {
		b.st.postFailed.Add(1)
		b.st.fail(fmt.Sprintf("post: status %d", resp.StatusCode()))
		return
	}
	b.st.posted.Add(1)
	rm.posted(resp.JSON201.Seq)
}

// errClass shortens an error to its kind, so errors can be counted by it.
func errClass(err error) string {
	msg := err.Error()
	for _, kind := range []string{"connection refused", "connection reset", "timeout", "too many open files",
		"cannot assign requested address", "EOF", "broken pipe", "deadline exceeded"} {
		if strings.Contains(msg, kind) {
			return kind
		}
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

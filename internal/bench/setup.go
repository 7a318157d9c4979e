package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/parley-chat/parley/api"
)

// user is a registered account of the run.
type user struct {
	token string
	room  int // the one room the user's streams are in
}

// room is a room of the run and the user who owns it and posts in it.
type room struct {
	id      string
	poster  string // the owner's access token
	lastSeq int64  // after setup: the seq the streams start after
	// final is the highest seq a post into the room was given.
	final int64
	mu    sync.Mutex
}

// plan lays the streams out: every user's streams are in one room, users
// are spread evenly over the rooms, so user and room streams see the same
// events.
type plan struct {
	users         []user
	rooms         []*room
	streamUser    []int // stream index -> user index
	streamReplica []int // stream index -> replica index
}

func newPlan(cfg *Config) (*plan, error) {
	perUser := cfg.StreamsPerUser
	if maxPer := cfg.Streams / cfg.Rooms; perUser > maxPer {
		perUser = max(maxPer, 1) // at least one user per room
	}
	nUsers := (cfg.Streams + perUser - 1) / perUser
	if nUsers < cfg.Rooms {
		return nil, fmt.Errorf("%d streams cannot cover %d rooms", cfg.Streams, cfg.Rooms)
	}
	p := &plan{users: make([]user, nUsers), rooms: make([]*room, cfg.Rooms)}
	for u := range p.users {
		p.users[u].room = u * cfg.Rooms / nUsers
	}
	for i := range cfg.Streams {
		p.streamUser = append(p.streamUser, i/perUser)
		// Replicas take turns per stream: each replica serves every room.
		p.streamReplica = append(p.streamReplica, i%len(cfg.URLs))
	}
	return p, nil
}

// setup registers the users (room owners first), creates the rooms, joins
// every user to its room, and notes each room's last seq, all through the
// setup replica: password hashing grows a heap that the process keeps, so
// the replicas measured should not do it.
func (b *bench) setup(ctx context.Context) error {
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	prefix := "b" + hex.EncodeToString(runID)
	password := "bench-" + hex.EncodeToString(runID) + "-password"

	for r := range b.plan.rooms {
		b.plan.rooms[r] = &room{}
	}
	err := b.parallel(ctx, len(b.plan.rooms), func(ctx context.Context, r int) error {
		tok, err := b.register(ctx, fmt.Sprintf("%s-o%d", prefix, r), password)
		if err != nil {
			return err
		}
		c := b.client(b.cfg.SetupURL, tok)
		resp, err := c.CreateRoomWithResponse(ctx, api.CreateRoomRequest{
			Name: fmt.Sprintf("bench %s %d", prefix, r), Visibility: api.CreateRoomRequestVisibilityPublic})
		if err != nil {
			return fmt.Errorf("create room: %w", err)
		}
		if resp.JSON201 == nil {
			return fmt.Errorf("create room: status %d: %s", resp.StatusCode(), resp.Body)
		}
		b.plan.rooms[r].id, b.plan.rooms[r].poster = resp.JSON201.Id, tok
		return nil
	})
	if err != nil {
		return err
	}
	err = b.parallel(ctx, len(b.plan.users), func(ctx context.Context, u int) error {
		tok, err := b.register(ctx, fmt.Sprintf("%s-u%d", prefix, u), password)
		if err != nil {
			return err
		}
		b.plan.users[u].token = tok
		rm := b.plan.rooms[b.plan.users[u].room]
		resp, err := b.client(b.cfg.SetupURL, tok).JoinRoomWithResponse(ctx, rm.id)
		if err != nil {
			return fmt.Errorf("join room: %w", err)
		}
		if resp.StatusCode() != http.StatusOK {
			return fmt.Errorf("join room: status %d: %s", resp.StatusCode(), resp.Body)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return b.parallel(ctx, len(b.plan.rooms), func(ctx context.Context, r int) error {
		rm := b.plan.rooms[r]
		resp, err := b.client(b.cfg.SetupURL, rm.poster).GetRoomWithResponse(ctx, rm.id)
		if err != nil {
			return fmt.Errorf("get room: %w", err)
		}
		if resp.JSON200 == nil {
			return fmt.Errorf("get room: status %d: %s", resp.StatusCode(), resp.Body)
		}
		rm.lastSeq, rm.final = resp.JSON200.LastSeq, resp.JSON200.LastSeq
		return nil
	})
}

func (b *bench) register(ctx context.Context, username, password string) (string, error) {
	resp, err := b.client(b.cfg.SetupURL, "").RegisterWithResponse(ctx, api.RegisterRequest{Username: username, Password: password})
	// A replica busy hashing passwords answers 503: wait Retry-After, retry.
	for err == nil && resp.StatusCode() == http.StatusServiceUnavailable {
		secs, _ := strconv.Atoi(resp.HTTPResponse.Header.Get("Retry-After"))
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Duration(max(secs, 1)) * time.Second):
		}
		resp, err = b.client(b.cfg.SetupURL, "").RegisterWithResponse(ctx, api.RegisterRequest{Username: username, Password: password})
	}
	if err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	if resp.JSON201 == nil {
		return "", fmt.Errorf("register %s: status %d: %s", username, resp.StatusCode(), resp.Body)
	}
	return resp.JSON201.AccessToken, nil
}

// client is the generated API client for base, sending token if any.
func (b *bench) client(base, token string) *api.ClientWithResponses {
	c, err := api.NewClientWithResponses(base, api.WithHTTPClient(b.http),
		api.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			return nil
		}))
	if err != nil {
		panic(err) // only for a malformed base, which Config.validate refuses
	}
	return c
}

// parallel runs fn(0..n-1) on cfg.SetupConcurrency workers and returns the
// first error.
func (b *bench) parallel(ctx context.Context, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(b.cfg.SetupConcurrency, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}

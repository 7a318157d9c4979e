package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// A TokenSource gives a client its access tokens.
type TokenSource interface {
	// Token returns the access token to send ("" sends none).
	Token(ctx context.Context) (string, error)
	// Refresh returns a new access token after the server rejected
	// rejected (a 401, or a stream's reauth). Concurrent calls for the same
	// rejected token must share one refresh: the server takes a second
	// refresh with the same refresh token for a stolen one.
	Refresh(ctx context.Context, rejected string) (string, error)
}

// StaticToken is a TokenSource of one token that cannot be refreshed.
type StaticToken string

// Token returns the token.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// Refresh fails: a static token cannot be renewed.
func (t StaticToken) Refresh(context.Context, string) (string, error) {
	return "", ErrNoRefresh
}

// ErrNoRefresh is returned by a TokenSource that cannot refresh.
var ErrNoRefresh = errors.New("parley: the access token cannot be refreshed")

// refreshTimeout bounds one refresh call. A refresh runs to its end even
// when the caller that started it gives up: the server may already have
// rotated the refresh token, and only the answer holds the new one.
const refreshTimeout = 30 * time.Second

// SessionTokens is the TokenSource of a session from login or register: it
// refreshes through POST /v1/auth/refresh, one refresh at a time, however
// many calls got a 401 at once. It is safe for concurrent use.
type SessionTokens struct {
	server string
	hc     HttpRequestDoer
	// onRefresh is called with every new session, e.g. to store it.
	onRefresh func(Session)

	mu       sync.Mutex
	session  Session
	inflight *refreshCall
	// dead is a refusal of the session's refresh token: the session is
	// over (revoked, expired, or reused), so no further refresh is tried.
	dead error
}

type refreshCall struct {
	done  chan struct{}
	token string
	err   error
}

// NewSessionTokens returns a TokenSource for session s on server, calling
// through hc (nil: http.DefaultClient). onRefresh, if not nil, is called
// with each new session after a refresh (from the goroutine that made it).
func NewSessionTokens(server string, s Session, hc HttpRequestDoer, onRefresh func(Session)) *SessionTokens {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &SessionTokens{server: server, hc: hc, session: s, onRefresh: onRefresh}
}

// Session is the current session: after a refresh, the refreshed one.
func (t *SessionTokens) Session() Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.session
}

// Token returns the current access token.
func (t *SessionTokens) Token(context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.session.AccessToken, nil
}

// Refresh refreshes the session unless the rejected token is already
// replaced; callers arriving during a refresh wait for its result.
func (t *SessionTokens) Refresh(ctx context.Context, rejected string) (string, error) {
	t.mu.Lock()
	if t.dead != nil {
		t.mu.Unlock()
		return "", t.dead
	}
	if t.session.AccessToken != rejected {
		tok := t.session.AccessToken
		t.mu.Unlock()
		return tok, nil
	}
	if c := t.inflight; c != nil {
		t.mu.Unlock()
		select {
		case <-c.done:
			return c.token, c.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	c := &refreshCall{done: make(chan struct{})}
	t.inflight = c
	refreshToken := t.session.RefreshToken
	t.mu.Unlock()

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	s, err := t.refresh(rctx, refreshToken)
	cancel()

	t.mu.Lock()
	if err == nil {
		t.session = s
		c.token = s.AccessToken
	} else {
		c.err = fmt.Errorf("refresh the session: %w", err)
		if st := ErrorStatus(err); st >= 400 && st < 500 {
			t.dead = c.err
		}
	}
	t.inflight = nil
	t.mu.Unlock()
	close(c.done)
	if err == nil && t.onRefresh != nil {
		t.onRefresh(s)
	}
	return c.token, c.err
}

func (t *SessionTokens) refresh(ctx context.Context, refreshToken string) (Session, error) {
	c, err := NewClientWithResponses(t.server, WithHTTPClient(problemDoer{t.hc}))
	if err != nil {
		return Session{}, err
	}
	resp, err := c.RefreshWithResponse(ctx, RefreshRequest{RefreshToken: refreshToken})
	if err != nil {
		return Session{}, err
	}
	if resp.JSON200 == nil {
		return Session{}, fmt.Errorf("refresh: unexpected answer %d", resp.StatusCode())
	}
	return *resp.JSON200, nil
}

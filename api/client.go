package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// API is a Parley client for one user: the generated calls
// (ClientWithResponses), authenticated from a TokenSource, with refused
// calls returned as *Error, and the event streams (RoomStream, UserStream).
type API struct {
	*ClientWithResponses
	server  string
	raw     HttpRequestDoer
	editors []RequestEditorFn
	tokens  TokenSource
}

// New returns a client of the server at server (e.g.
// "https://chat.example.com") that authenticates with tokens (nil: no
// token, for register and login). opts are the generated client's options
// (WithHTTPClient, WithRequestEditorFn).
//
// On a 401 the client asks tokens for a new token once and repeats the
// call; every answer of 400 or more is returned as an *Error, so the
// generated per-status fields of the responses stay empty.
func New(server string, tokens TokenSource, opts ...ClientOption) (*API, error) {
	if tokens == nil {
		tokens = StaticToken("")
	}
	c, err := NewClient(server, opts...)
	if err != nil {
		return nil, err
	}
	a := &API{server: c.Server, raw: c.Client, editors: c.RequestEditors, tokens: tokens}
	c.Client = problemDoer{authDoer{raw: c.Client, tokens: tokens}}
	a.ClientWithResponses = &ClientWithResponses{ClientInterface: c}
	return a, nil
}

// Login logs username in and returns a client of that session, whose
// tokens are SessionTokens.
func Login(ctx context.Context, server, username, password string, opts ...ClientOption) (*API, error) {
	anon, err := New(server, nil, opts...)
	if err != nil {
		return nil, err
	}
	resp, err := anon.LoginWithResponse(ctx, LoginRequest{Username: username, Password: password})
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	if resp.JSON200 == nil {
		return nil, fmt.Errorf("log in: unexpected answer %d", resp.StatusCode())
	}
	return anon.withSession(*resp.JSON200, opts)
}

// Register registers a user and returns a client of their first session,
// whose tokens are SessionTokens.
func Register(ctx context.Context, server string, req RegisterRequest, opts ...ClientOption) (*API, error) {
	anon, err := New(server, nil, opts...)
	if err != nil {
		return nil, err
	}
	resp, err := anon.RegisterWithResponse(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	if resp.JSON201 == nil {
		return nil, fmt.Errorf("register: unexpected answer %d", resp.StatusCode())
	}
	return anon.withSession(*resp.JSON201, opts)
}

func (a *API) withSession(s Session, opts []ClientOption) (*API, error) {
	return New(a.server, NewSessionTokens(a.server, s, a.raw, nil), opts...)
}

// Tokens is the client's TokenSource.
func (a *API) Tokens() TokenSource { return a.tokens }

// Session is the client's current session when its tokens are
// SessionTokens (from Login or Register), else false.
func (a *API) Session() (Session, bool) {
	if st, ok := a.tokens.(*SessionTokens); ok {
		return st.Session(), true
	}
	return Session{}, false
}

// authDoer sends the token source's token and, after a 401, a refreshed
// one, once.
type authDoer struct {
	raw    HttpRequestDoer
	tokens TokenSource
}

func (d authDoer) Do(req *http.Request) (*http.Response, error) {
	// The auth calls take no token, and their 401s (a wrong password, a
	// used refresh token) are answers, not stale tokens.
	if strings.Contains(req.URL.Path, "/v1/auth/") {
		return d.raw.Do(req)
	}
	ctx := req.Context()
	tok, err := d.tokens.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("get an access token: %w", err)
	}
	if tok == "" {
		return d.raw.Do(req)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := d.raw.Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.GetBody == nil {
		return resp, nil // cannot send the body again
	}
	fresh, rerr := d.tokens.Refresh(ctx, tok)
	if rerr != nil {
		// The caller gets the 401 it had; the refresh's own failure is
		// for the token source to report.
		return resp, nil
	}
	drain(resp)
	again := req.Clone(ctx)
	if req.GetBody != nil {
		if again.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	again.Header.Set("Authorization", "Bearer "+fresh)
	return d.raw.Do(again)
}

// problemDoer turns every answer of 400 or more into an *Error.
type problemDoer struct{ next HttpRequestDoer }

func (d problemDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.next.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		return nil, errorFromResponse(resp)
	}
	return resp, nil
}

// drain reads a little of an unwanted body and closes it, so the
// connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProblemBytes))
	resp.Body.Close()
}

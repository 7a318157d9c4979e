// Package accounts tests registration, sessions and the account lookups
// against real `parley serve` processes and a real database.
package accounts

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// Default token lifetimes from the contract, in seconds.
const (
	accessTTL  = 15 * 60
	refreshTTL = 720 * 60 * 60
)

// MustServe starts one replica on a fresh migrated database.
func MustServe(tb testing.TB) (*e2e.Cluster, *e2e.Replica) {
	tb.Helper()
	c := e2e.NewCluster(tb)
	return c, c.MustStart(tb)
}

// anon is a client without credentials.
func anon(r *e2e.Replica) *e2e.Client { return &e2e.Client{Base: r.URL} }

// withToken is a client presenting token.
func withToken(r *e2e.Replica, token string) *e2e.Client {
	return &e2e.Client{Base: r.URL, Token: token}
}

// MustSession checks resp is a session answered with status and returns it.
func MustSession(tb testing.TB, resp *e2e.Response, status int) chat.Session {
	tb.Helper()
	if resp.Status != status {
		tb.Fatalf("status %d, want %d: %s", resp.Status, status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("content type %q, want application/json", ct)
	}
	var s chat.Session
	resp.JSON(tb, &s)
	switch {
	case s.TokenType != "Bearer":
		tb.Fatalf("token_type %q, want Bearer", s.TokenType)
	case s.AccessToken == "" || s.RefreshToken == "":
		tb.Fatalf("session without tokens: %s", resp.Body)
	case s.ExpiresIn != accessTTL || s.RefreshExpiresIn != refreshTTL:
		tb.Fatalf("expires_in %d, refresh_expires_in %d; want %d, %d", s.ExpiresIn, s.RefreshExpiresIn, accessTTL, refreshTTL)
	case uuid.Validate(s.User.ID) != nil:
		tb.Fatalf("user id %q is not a UUID", s.User.ID)
	case time.Since(s.User.CreatedAt) > time.Hour || s.User.CreatedAt.Location() != time.UTC:
		tb.Fatalf("user created_at %v: want a recent UTC time", s.User.CreatedAt)
	}
	return s
}

// MustUser checks resp is a 200 User and returns it.
func MustUser(tb testing.TB, resp *e2e.Response) chat.User {
	tb.Helper()
	if resp.Status != http.StatusOK {
		tb.Fatalf("status %d, want 200: %s", resp.Status, resp.Body)
	}
	var u chat.User
	resp.JSON(tb, &u)
	return u
}

// MustMe returns the user an access token authenticates.
func MustMe(tb testing.TB, r *e2e.Replica, token string) chat.User {
	tb.Helper()
	return MustUser(tb, withToken(r, token).Do(tb, http.MethodGet, "/v1/me", nil))
}

// MustLocation checks a problem has an error at location whose message
// contains message.
func MustLocation(tb testing.TB, p e2e.Problem, location, message string) {
	tb.Helper()
	for _, e := range p.Errors {
		if e.Location == location && strings.Contains(e.Message, message) {
			return
		}
	}
	tb.Fatalf("problem %+v: no error at %s saying %q", p, location, message)
}

// credentials is the body of register and login.
func credentials(username, password string) map[string]string {
	return map[string]string{"username": username, "password": password}
}

// Stored counts what the account operations write, to check that refused
// requests store nothing.
type Stored struct {
	Users, Tokens, Used, Revoked int
}

// MustStored reads the account tables of the database at url.
func MustStored(tb testing.TB, url string) Stored {
	tb.Helper()
	var s Stored
	err := e2e.MustConnect(tb, url).QueryRow(tb.Context(), `SELECT
		(SELECT count(*) FROM users),
		(SELECT count(*) FROM refresh_tokens),
		(SELECT count(*) FROM refresh_tokens WHERE used_at IS NOT NULL),
		(SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL)`).Scan(&s.Users, &s.Tokens, &s.Used, &s.Revoked)
	if err != nil {
		tb.Fatalf("count account rows: %v", err)
	}
	return s
}

// MustPasswordHash reads the stored password hash of a user.
func MustPasswordHash(tb testing.TB, url, userID string) string {
	tb.Helper()
	var hash string
	if err := e2e.MustConnect(tb, url).QueryRow(tb.Context(), `SELECT password_hash FROM users WHERE id = $1`, userID).Scan(&hash); err != nil {
		tb.Fatalf("read password hash: %v", err)
	}
	return hash
}

func TestRegister(t *testing.T) {
	t.Parallel()
	c, r := MustServe(t)
	// taken is registered first, for the conflict cases.
	taken := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/register", credentials("taken", "password-taken")), http.StatusCreated)

	t.Run("OK", func(t *testing.T) {
		tests := []struct {
			name            string
			body            map[string]string
			wantUsername    string
			wantDisplayName string
		}{
			{"DisplayName", map[string]string{"username": "alice", "password": "password-alice", "display_name": "Alice Liddell"}, "alice", "Alice Liddell"},
			{"DefaultDisplayName", credentials("bob", "password-bob"), "bob", "bob"},
			{"UpperCaseFolded", credentials("CaRoL", "password-carol"), "carol", "carol"},
			{"AllowedCharacters", credentials("d.a-v_1d", "password-david"), "d.a-v_1d", "d.a-v_1d"},
			{"ShortestUsername", credentials("eve", "password-eve"), "eve", "eve"},
			{"LongestUsername", credentials(strings.Repeat("f", 32), "password-f"), strings.Repeat("f", 32), strings.Repeat("f", 32)},
			{"ShortestPassword", credentials("grace", "12345678"), "grace", "grace"},
			{"LongestPassword", credentials("heidi", strings.Repeat("p", 128)), "heidi", "heidi"},
			{"PasswordCountsCharacters", credentials("ivan", strings.Repeat("ü", 128)), "ivan", "ivan"},
			{"UnicodeDisplayName", map[string]string{"username": "judy", "password": "password-judy", "display_name": strings.Repeat("é", 64)}, "judy", strings.Repeat("é", 64)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/register", tt.body), http.StatusCreated)
				if s.User.Username != tt.wantUsername || s.User.DisplayName != tt.wantDisplayName {
					t.Fatalf("user %+v, want username %q display_name %q", s.User, tt.wantUsername, tt.wantDisplayName)
				}
				if me := MustMe(t, r, s.AccessToken); me != s.User {
					t.Fatalf("/v1/me %+v, want %+v", me, s.User)
				}
				login := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/login", credentials(tt.body["username"], tt.body["password"])), http.StatusOK)
				if login.User != s.User {
					t.Fatalf("login user %+v, want %+v", login.User, s.User)
				}
				if hash := MustPasswordHash(t, c.DatabaseURL, s.User.ID); !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, tt.body["password"]) {
					t.Fatalf("stored password hash %q: want an argon2id hash", hash)
				}
			})
		}
	})

	t.Run("Err", func(t *testing.T) {
		tests := []struct {
			name         string
			body         map[string]string
			wantStatus   int
			wantLocation string
		}{
			{"ErrUsernameTaken", credentials("taken", "password-other"), http.StatusConflict, ""},
			{"ErrUsernameTakenOtherCase", credentials("TaKeN", "password-other"), http.StatusConflict, ""},
			{"ErrUsernameTooShort", credentials("ab", "password-ab"), http.StatusUnprocessableEntity, "body.username"},
			{"ErrUsernameTooLong", credentials(strings.Repeat("a", 33), "password-long"), http.StatusUnprocessableEntity, "body.username"},
			{"ErrUsernameEmpty", credentials("", "password-empty"), http.StatusUnprocessableEntity, "body.username"},
			{"ErrUsernameSpace", credentials("al ice", "password-alice"), http.StatusUnprocessableEntity, "body.username"},
			{"ErrUsernameAt", credentials("alice@example.com", "password-alice"), http.StatusUnprocessableEntity, "body.username"},
			{"ErrUsernameNonASCII", credentials("alicé", "password-alice"), http.StatusUnprocessableEntity, "body.username"},
			// U+212A KELVIN SIGN lower-cases to "k": it must not pass as "kate".
			{"ErrUsernameKelvinSign", credentials("\u212Aate", "password-kate"), http.StatusUnprocessableEntity, "body.username"},
			{"ErrPasswordTooShort", credentials("mallory", "1234567"), http.StatusUnprocessableEntity, "body.password"},
			{"ErrPasswordTooLong", credentials("mallory", strings.Repeat("p", 129)), http.StatusUnprocessableEntity, "body.password"},
			{"ErrPasswordEmpty", credentials("mallory", ""), http.StatusUnprocessableEntity, "body.password"},
			{"ErrDisplayNameEmpty", map[string]string{"username": "mallory", "password": "password-mallory", "display_name": ""}, http.StatusUnprocessableEntity, "body.display_name"},
			{"ErrDisplayNameTooLong", map[string]string{"username": "mallory", "password": "password-mallory", "display_name": strings.Repeat("m", 65)}, http.StatusUnprocessableEntity, "body.display_name"},
			{"ErrDisplayNameWhiteSpace", map[string]string{"username": "mallory", "password": "password-mallory", "display_name": " \t\u00a0"}, http.StatusUnprocessableEntity, "body.display_name"},
			{"ErrDisplayNameNUL", map[string]string{"username": "mallory", "password": "password-mallory", "display_name": "mal\x00lory"}, http.StatusUnprocessableEntity, "body.display_name"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := MustStored(t, c.DatabaseURL)
				p := anon(r).Do(t, http.MethodPost, "/v1/auth/register", tt.body).MustProblem(t, tt.wantStatus)
				if tt.wantLocation != "" {
					MustLocation(t, p, tt.wantLocation, "")
				}
				if after := MustStored(t, c.DatabaseURL); after != before {
					t.Fatalf("stored %+v after a refused register, before %+v", after, before)
				}
			})
		}
	})

	// The conflicts left the first account as it was.
	login := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/login", credentials("taken", "password-taken")), http.StatusOK)
	if login.User != taken.User {
		t.Fatalf("taken is now %+v, want %+v", login.User, taken.User)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	c, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	const password = "password-alice"

	t.Run("OK", func(t *testing.T) {
		for _, tt := range []struct{ name, username string }{
			{"SameCase", "alice"},
			{"OtherCase", "ALICE"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/login", credentials(tt.username, password)), http.StatusOK)
				if s.User != alice.Session.User {
					t.Fatalf("user %+v, want %+v", s.User, alice.Session.User)
				}
				if s.RefreshToken == alice.Session.RefreshToken || s.AccessToken == alice.Session.AccessToken {
					t.Fatal("login reused the tokens of another session")
				}
				if me := MustMe(t, r, s.AccessToken); me != alice.Session.User {
					t.Fatalf("/v1/me %+v, want %+v", me, alice.Session.User)
				}
			})
		}
	})

	t.Run("ErrUnauthenticated", func(t *testing.T) {
		// One answer for every bad credential: it must not tell which
		// usernames exist.
		var details []string
		for _, tt := range []struct{ name, username, password string }{
			{"WrongPassword", "alice", "password-bob"},
			{"WrongPasswordCase", "alice", "PASSWORD-ALICE"},
			{"UnknownUser", "bob", "password-bob"},
			{"ImpossibleUsername", "no such user!", password},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := MustStored(t, c.DatabaseURL)
				p := anon(r).Do(t, http.MethodPost, "/v1/auth/login", credentials(tt.username, tt.password)).MustProblem(t, http.StatusUnauthorized)
				details = append(details, p.Detail)
				if after := MustStored(t, c.DatabaseURL); after != before {
					t.Fatalf("stored %+v after a refused login, before %+v", after, before)
				}
			})
		}
		for _, d := range details {
			if d != details[0] {
				t.Fatalf("login failures differ: %q", details)
			}
		}
	})
}

// TestRefresh follows one session family through rotations, then reuses a
// rotated token: the whole family, its newest token included, stops working,
// and the user's other sessions keep working.
func TestRefresh(t *testing.T) {
	t.Parallel()
	c, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	other := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/login", credentials("alice", "password-alice")), http.StatusOK)

	tokens := []string{alice.Session.RefreshToken} // the family, oldest first
	issued := []string{alice.Session.RefreshToken, other.RefreshToken}
	newest := func() string { return tokens[len(tokens)-1] }
	steps := []struct {
		name   string
		token  func() string
		want   int
		rotate bool // the answer's refresh token joins the family
	}{
		{"OK", newest, http.StatusOK, true},
		{"OKAgain", newest, http.StatusOK, true},
		{"ErrUnknownToken", func() string { return "not-a-refresh-token" }, http.StatusUnauthorized, false},
		{"ErrAlteredToken", func() string { tok := newest(); return string(tok[0]^1) + tok[1:] }, http.StatusUnauthorized, false},
		{"ErrReuseRevokesFamily", func() string { return tokens[0] }, http.StatusUnauthorized, false},
		{"ErrNewestOfRevokedFamily", newest, http.StatusUnauthorized, false},
		{"ErrMiddleOfRevokedFamily", func() string { return tokens[1] }, http.StatusUnauthorized, false},
		{"OtherSessionUnaffected", func() string { return other.RefreshToken }, http.StatusOK, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			tok := st.token()
			resp := anon(r).Do(t, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": tok})
			if st.want != http.StatusOK {
				resp.MustProblem(t, st.want)
				return
			}
			s := MustSession(t, resp, http.StatusOK)
			if s.User != alice.Session.User {
				t.Fatalf("user %+v, want %+v", s.User, alice.Session.User)
			}
			if s.RefreshToken == tok {
				t.Fatal("refresh did not rotate the refresh token")
			}
			if me := MustMe(t, r, s.AccessToken); me.ID != alice.Session.User.ID {
				t.Fatalf("/v1/me is %s, want %s", me.ID, alice.Session.User.ID)
			}
			issued = append(issued, s.RefreshToken)
			if st.rotate {
				tokens = append(tokens, s.RefreshToken)
			}
		})
	}

	// Refresh tokens are stored only as hashes: no stored row holds one.
	ctx := t.Context()
	conn := e2e.MustConnect(t, c.DatabaseURL)
	for _, tok := range issued {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens t WHERE position($1 in t::text) > 0`, tok).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("refresh token %q is stored in clear", tok)
		}
	}
	if got := MustStored(t, c.DatabaseURL); got.Tokens != len(issued) {
		t.Fatalf("%d refresh tokens stored, want %d", got.Tokens, len(issued))
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	_, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	other := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/login", credentials("alice", "password-alice")), http.StatusOK)
	third := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/login", credentials("alice", "password-alice")), http.StatusOK)
	rotated := MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": third.RefreshToken}), http.StatusOK)

	refresh := func(t *testing.T, token string) *e2e.Response {
		t.Helper()
		return anon(r).Do(t, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": token})
	}
	steps := []struct {
		name  string
		token string // logged out
		check func(t *testing.T)
	}{
		{"OK", alice.Session.RefreshToken, func(t *testing.T) {
			refresh(t, alice.Session.RefreshToken).MustProblem(t, http.StatusUnauthorized)
		}},
		{"AgainStill204", alice.Session.RefreshToken, func(t *testing.T) {
			refresh(t, alice.Session.RefreshToken).MustProblem(t, http.StatusUnauthorized)
		}},
		{"UnknownToken204", "not-a-refresh-token", func(t *testing.T) {
			MustSession(t, refresh(t, other.RefreshToken), http.StatusOK)
		}},
		{"RotatedTokenRevokesFamily", third.RefreshToken, func(t *testing.T) {
			refresh(t, rotated.RefreshToken).MustProblem(t, http.StatusUnauthorized)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp := anon(r).Do(t, http.MethodPost, "/v1/auth/logout", map[string]string{"refresh_token": st.token})
			if resp.Status != http.StatusNoContent || len(resp.Body) != 0 {
				t.Fatalf("logout: %d %q, want 204 and no body", resp.Status, resp.Body)
			}
			st.check(t)
		})
	}

	// As documented: access tokens already issued stay valid until they expire.
	t.Run("AccessTokenValidUntilExpiry", func(t *testing.T) {
		if me := MustMe(t, r, alice.Token); me != alice.Session.User {
			t.Fatalf("/v1/me %+v, want %+v", me, alice.Session.User)
		}
	})
}

func TestMe(t *testing.T) {
	t.Parallel()
	_, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")

	for _, tt := range []struct {
		name          string
		authorization string
		want          int
	}{
		{"OK", "Bearer " + alice.Token, http.StatusOK},
		{"OKSchemeAnyCase", "bearer " + alice.Token, http.StatusOK},
		{"ErrNoAuthorization", "", http.StatusUnauthorized},
		{"ErrOtherScheme", "Basic YWxpY2U6cGFzc3dvcmQ=", http.StatusUnauthorized},
		{"ErrNoToken", "Bearer", http.StatusUnauthorized},
		{"ErrEmptyToken", "Bearer ", http.StatusUnauthorized},
		{"ErrTokenWithoutScheme", alice.Token, http.StatusUnauthorized},
		{"ErrRefreshTokenAsAccessToken", "Bearer " + alice.Session.RefreshToken, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := MustDoAuthorization(t, r.URL+"/v1/me", tt.authorization)
			if tt.want != http.StatusOK {
				resp.MustProblem(t, tt.want)
				return
			}
			if u := MustUser(t, resp); u != alice.Session.User {
				t.Fatalf("/v1/me %+v, want %+v", u, alice.Session.User)
			}
		})
	}
}

// MustDoAuthorization GETs url with the Authorization header set verbatim
// (none when empty).
func MustDoAuthorization(tb testing.TB, url, authorization string) *e2e.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return MustSend(tb, req)
}

func TestUserByName(t *testing.T) {
	t.Parallel()
	_, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	bob := e2e.MustRegister(t, r.URL, "bob")

	for _, tt := range []struct {
		name     string
		username string
		want     int
	}{
		{"OK", "alice", http.StatusOK},
		{"OKOtherCase", "ALICE", http.StatusOK},
		{"ErrNotFound", "carol", http.StatusNotFound},
		{"ErrNotFoundImpossibleUsername", "a", http.StatusNotFound},
		{"ErrNotFoundBadCharacters", "alice!", http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := bob.Do(t, http.MethodGet, "/v1/users/by-name/"+tt.username, nil)
			if tt.want != http.StatusOK {
				resp.MustProblem(t, tt.want)
				return
			}
			if u := MustUser(t, resp); u != alice.Session.User {
				t.Fatalf("user %+v, want %+v", u, alice.Session.User)
			}
		})
	}
	t.Run("ErrUnauthenticated", func(t *testing.T) {
		anon(r).Do(t, http.MethodGet, "/v1/users/by-name/alice", nil).MustProblem(t, http.StatusUnauthorized)
	})
}

// MustConcurrently sends the same request n times at once and returns the
// answers' statuses and bodies.
func MustConcurrently(tb testing.TB, c *e2e.Client, n int, method, path string, body any) []*e2e.Response {
	tb.Helper()
	out := make([]*e2e.Response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i], errs[i] = c.Try(method, path, body) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	return out
}

// byStatus groups responses by status.
func byStatus(rs []*e2e.Response) map[int][]*e2e.Response {
	m := map[int][]*e2e.Response{}
	for _, r := range rs {
		m[r.Status] = append(m[r.Status], r)
	}
	return m
}

// TestConcurrentRegister: of simultaneous registrations of one username,
// one wins and the others get 409, never a 500.
func TestConcurrentRegister(t *testing.T) {
	t.Parallel()
	c, r := MustServe(t)
	const n = 6
	got := byStatus(MustConcurrently(t, anon(r), n, http.MethodPost, "/v1/auth/register", credentials("Racer", "password-racer")))
	// A loaded replica may answer 503 to a register still waiting for a
	// hashing slot after 5 s; a client retries it after Retry-After.
	for len(got[http.StatusServiceUnavailable]) > 0 {
		resp := got[http.StatusServiceUnavailable][0]
		got[http.StatusServiceUnavailable] = got[http.StatusServiceUnavailable][1:]
		resp.MustProblem(t, http.StatusServiceUnavailable)
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || secs < 1 {
			t.Fatalf("503 with Retry-After %q", resp.Header.Get("Retry-After"))
		}
		time.Sleep(time.Duration(secs) * time.Second)
		again := anon(r).Do(t, http.MethodPost, "/v1/auth/register", credentials("Racer", "password-racer"))
		got[again.Status] = append(got[again.Status], again)
	}
	if len(got[http.StatusCreated]) != 1 || len(got[http.StatusConflict]) != n-1 {
		t.Fatalf("statuses %v: want one 201 and %d 409", statusCounts(got), n-1)
	}
	for _, resp := range got[http.StatusConflict] {
		resp.MustProblem(t, http.StatusConflict)
	}
	if s := MustStored(t, c.DatabaseURL); s.Users != 1 {
		t.Fatalf("%d users stored, want 1", s.Users)
	}
}

// TestConcurrentRefresh: a refresh token presented twice at once is reuse:
// one presentation rotates, the other is refused and revokes the family, so
// the token the first one got stops working too.
func TestConcurrentRefresh(t *testing.T) {
	t.Parallel()
	_, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	const n = 4
	got := byStatus(MustConcurrently(t, anon(r), n, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": alice.Session.RefreshToken}))
	if len(got[http.StatusOK]) != 1 || len(got[http.StatusUnauthorized]) != n-1 {
		t.Fatalf("statuses %v: want one 200 and %d 401", statusCounts(got), n-1)
	}
	for _, resp := range got[http.StatusUnauthorized] {
		resp.MustProblem(t, http.StatusUnauthorized)
	}
	winner := MustSession(t, got[http.StatusOK][0], http.StatusOK)
	anon(r).Do(t, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": winner.RefreshToken}).MustProblem(t, http.StatusUnauthorized)
}

func statusCounts(m map[int][]*e2e.Response) map[int]int {
	out := map[int]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

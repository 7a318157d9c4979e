package accounts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// maxEcho is the most of any value an error body may echo (the contract's
// Limits); the cut adds one "…".
const maxEcho = 200

// MustBoundedEcho checks a problem body: it holds none of secrets, no
// errors[].value longer than maxEcho characters, and no nested structure
// (errors[].value is a scalar; the body is no deeper than the problem
// shape itself). It returns the problem.
func MustBoundedEcho(tb testing.TB, resp *e2e.Response, want int, secrets ...string) e2e.Problem {
	tb.Helper()
	p := resp.MustProblem(tb, want)
	for _, s := range secrets {
		if bytes.Contains(resp.Body, []byte(s)) || bytes.Contains(resp.Body, []byte(jsonEscape(s))) {
			tb.Fatalf("error body echoes a secret: %.300s", resp.Body)
		}
	}
	if len(resp.Body) > 4<<10 {
		tb.Fatalf("error body of %d bytes: %.300s", len(resp.Body), resp.Body)
	}
	var body struct {
		Errors []map[string]any `json:"errors"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		tb.Fatalf("error body does not parse: %v", err)
	}
	for _, e := range body.Errors {
		for k, v := range e {
			switch x := v.(type) {
			case map[string]any, []any:
				tb.Fatalf("errors[].%s is a nested structure: %.300s", k, resp.Body)
			case string:
				if n := utf8.RuneCountInString(x); n > maxEcho+1 {
					tb.Fatalf("errors[].%s echoes %d characters", k, n)
				}
			}
		}
	}
	return p
}

// MustSendBody sends body as application/json, with token as a bearer
// token unless it is "".
func MustSendBody(tb testing.TB, method, url, token string, body []byte) *e2e.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return MustSend(tb, req)
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// nested is a JSON body nesting n levels: objects around an array.
func nested(n int) []byte {
	return []byte(strings.Repeat(`{"a":`, n/2) + strings.Repeat("[", n-n/2) + strings.Repeat("]", n-n/2) + strings.Repeat("}", n/2))
}

// TestNoEchoedSecrets sends every secret-carrying field invalid (too long,
// the wrong type, malformed around it) and checks no answer echoes it; long
// values of other fields come back cut to 200 characters at most.
func TestNoEchoedSecrets(t *testing.T) {
	t.Parallel()
	c, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	const secret = "Zq7SECRETx9"
	long := func(n int) string { return secret + strings.Repeat("s", n-len(secret)) }
	secretBodies := func(field string, valid map[string]any, tooLong int) []struct {
		name string
		body []byte
	} {
		with := func(v any) []byte {
			m := map[string]any{}
			for k, x := range valid {
				m[k] = x
			}
			m[field] = v
			b, _ := json.Marshal(m)
			return b
		}
		return []struct {
			name string
			body []byte
		}{
			{"TooLong", with(long(tooLong))},
			{"FarTooLong", with(long(5000))},
			{"Empty", with("")},
			{"Number", []byte(strings.Replace(string(with(0)), `"`+field+`":0`, `"`+field+`":7793462001`, 1))},
			{"Object", with(map[string]any{"v": secret})},
			{"Array", with([]any{secret})},
			{"Bool", with(true)},
			{"MalformedAfter", append(with(secret), '}')},
			{"MalformedInside", []byte(`{"` + field + `":"` + secret + `",`)},
			{"UnknownFieldToo", append(with(secret)[:len(with(secret))-1], []byte(`,"extra":1}`)...)},
		}
	}
	ops := []struct {
		name, path, field string
		valid             map[string]any
		tooLong           int
	}{
		{"RegisterPassword", "/v1/auth/register", "password", map[string]any{"username": "mallory"}, 129},
		{"LoginPassword", "/v1/auth/login", "password", map[string]any{"username": "alice"}, 129},
		{"RefreshToken", "/v1/auth/refresh", "refresh_token", nil, 257},
		{"LogoutToken", "/v1/auth/logout", "refresh_token", nil, 257},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for _, tt := range secretBodies(op.field, op.valid, op.tooLong) {
				t.Run(tt.name, func(t *testing.T) {
					resp := MustPostRaw(t, r.URL+op.path, tt.body)
					if resp.Status < 400 || resp.Status >= 500 {
						t.Fatalf("status %d: %s", resp.Status, resp.Body)
					}
					MustBoundedEcho(t, resp, resp.Status, secret, "7793462001")
				})
			}
		})
	}
	// A stored user's real password, sent too long with it as a prefix.
	t.Run("RealPasswordPrefix", func(t *testing.T) {
		pw := "password-alice" + strings.Repeat("x", 200)
		resp := MustPostRaw(t, r.URL+"/v1/auth/login", []byte(`{"username":"alice","password":"`+pw+`"}`))
		MustBoundedEcho(t, resp, http.StatusUnprocessableEntity, "password-alice")
	})
	t.Run("AccessTokens", func(t *testing.T) {
		tok := long(3000)
		for _, tt := range []struct {
			name  string
			query string
			auth  string
		}{
			{"BearerHeader", "", "Bearer " + tok},
			{"WrongScheme", "", "Basic " + tok},
			{"QueryToken", "?access_token=" + url.QueryEscape(tok), ""},
			{"ExpiredLookingJWT", "?access_token=" + url.QueryEscape(alice.Token+secret), ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.URL+"/v1/rooms/"+room.ID+"/events"+tt.query, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.auth != "" {
					req.Header.Set("Authorization", tt.auth)
				}
				MustBoundedEcho(t, MustSend(t, req), http.StatusUnauthorized, secret)
			})
		}
	})
	// Other values come back cut to 200 characters.
	t.Run("LongValues", func(t *testing.T) {
		huge := strings.Repeat("é", 5000)
		for _, tt := range []struct {
			name, method, path string
			body               string
			token              string
		}{
			{"DisplayName", http.MethodPost, "/v1/auth/register", `{"username":"bob","password":"password-bob","display_name":"` + huge + `"}`, ""},
			{"Username", http.MethodPost, "/v1/auth/register", `{"username":"` + huge + `","password":"password-bob"}`, ""},
			{"RoomName", http.MethodPost, "/v1/rooms", `{"name":"` + huge + `","visibility":"public"}`, alice.Token},
			{"Visibility", http.MethodPost, "/v1/rooms", `{"name":"x","visibility":"` + huge + `"}`, alice.Token},
			{"Topic", http.MethodPatch, "/v1/rooms/" + room.ID, `{"topic":"` + huge + `"}`, alice.Token},
			{"MessageBody", http.MethodPost, "/v1/rooms/" + room.ID + "/messages", `{"body":"` + strings.Repeat("é", 4001) + `","client_id":"` + huge + `"}`, alice.Token},
			{"UnknownFieldName", http.MethodPost, "/v1/rooms", `{"name":"x","visibility":"public","` + huge + `":1}`, alice.Token},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := MustStored(t, c.DatabaseURL)
				resp := MustSendBody(t, tt.method, r.URL+tt.path, tt.token, []byte(tt.body))
				MustBoundedEcho(t, resp, http.StatusUnprocessableEntity)
				if bytes.Contains(resp.Body, []byte(strings.Repeat("é", maxEcho+1))) {
					t.Fatalf("echoes more than %d characters", maxEcho)
				}
				if after := MustStored(t, c.DatabaseURL); after != before {
					t.Fatalf("stored %+v, before %+v", after, before)
				}
			})
		}
	})
}

// TestDeepBodies sends bodies nested 10,000 levels (and just past the
// limit) to every operation that takes a body: each answers a small, flat
// 400, and nothing is stored. A body nested within the limit reaches
// validation as usual.
func TestDeepBodies(t *testing.T) {
	t.Parallel()
	c, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	ops := []struct {
		name, method, path string
		token              string
	}{
		{"Register", http.MethodPost, "/v1/auth/register", ""},
		{"Login", http.MethodPost, "/v1/auth/login", ""},
		{"Refresh", http.MethodPost, "/v1/auth/refresh", ""},
		{"Logout", http.MethodPost, "/v1/auth/logout", ""},
		{"CreateRoom", http.MethodPost, "/v1/rooms", alice.Token},
		{"UpdateRoom", http.MethodPatch, "/v1/rooms/" + room.ID, alice.Token},
		{"PostMessage", http.MethodPost, "/v1/rooms/" + room.ID + "/messages", alice.Token},
	}
	for _, op := range ops {
		for _, depth := range []int{10000, 33} {
			for _, shape := range []struct {
				name string
				body []byte
			}{
				{"Nested", nested(depth)},
				{"InField", []byte(`{"password":` + string(nested(depth)) + `}`)},
			} {
				t.Run(fmt.Sprintf("%s/%s%d", op.name, shape.name, depth), func(t *testing.T) {
					before := MustStored(t, c.DatabaseURL)
					resp := MustSendBody(t, op.method, r.URL+op.path, op.token, shape.body)
					MustBoundedEcho(t, resp, http.StatusBadRequest)
					if len(resp.Body) > 512 {
						t.Fatalf("answer of %d bytes", len(resp.Body))
					}
					if after := MustStored(t, c.DatabaseURL); after != before {
						t.Fatalf("stored %+v, before %+v", after, before)
					}
				})
			}
		}
	}
	t.Run("WithinLimit", func(t *testing.T) {
		resp := alice.Do(t, http.MethodPost, "/v1/rooms", json.RawMessage(`{"name":"x","visibility":"public","extra":`+string(nested(30))+`}`))
		MustBoundedEcho(t, resp, http.StatusUnprocessableEntity)
	})
}

package accounts

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/e2e"
)

// MustSend sends req and reads the whole answer.
func MustSend(tb testing.TB, req *http.Request) *e2e.Response {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return &e2e.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// MustPostRaw posts body as application/json, byte for byte; a nil body
// sends none.
func MustPostRaw(tb testing.TB, url string, body []byte) *e2e.Response {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return MustSend(tb, req)
}

// pad makes a valid JSON object larger than the 64 KiB body limit with
// white space only, so size is all that is wrong with it.
func pad(valid string) []byte {
	return []byte(valid[:len(valid)-1] + strings.Repeat(" ", 65<<10) + "}")
}

// TestBadInput sends each account operation bodies that are wrong in one
// way: each gets its 4xx as problem+json, and nothing is stored or revoked.
// The bodies would otherwise succeed, so a request wrongly let through shows
// up in the tables.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c, r := MustServe(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	rt := alice.Session.RefreshToken

	type badBody struct {
		name         string
		body         []byte
		want         int
		wantLocation string
		wantMessage  string // in the error at wantLocation
	}
	// credentialCases are the bad bodies of register and login; user and
	// password would be accepted as they are.
	credentialCases := func(user, password string) []badBody {
		valid := `{"username":"` + user + `","password":"` + password + `"}`
		return []badBody{
			{"EmptyBody", nil, http.StatusBadRequest, "", ""},
			{"WhiteSpaceOnly", []byte(" \n"), http.StatusBadRequest, "", ""},
			{"Null", []byte(`null`), http.StatusUnprocessableEntity, "", ""},
			{"Array", []byte(`[` + valid + `]`), http.StatusUnprocessableEntity, "", ""},
			{"MalformedJSON", []byte(valid[:len(valid)-1]), http.StatusBadRequest, "", ""},
			{"TrailingData", []byte(valid + valid), http.StatusBadRequest, "", ""},
			{"MissingUsername", []byte(`{"password":"` + password + `"}`), http.StatusUnprocessableEntity, "body", "username"},
			{"MissingPassword", []byte(`{"username":"` + user + `"}`), http.StatusUnprocessableEntity, "body", "password"},
			{"EmptyObject", []byte(`{}`), http.StatusUnprocessableEntity, "body", "username"},
			{"UsernameNumber", []byte(`{"username":123,"password":"` + password + `"}`), http.StatusUnprocessableEntity, "body.username", ""},
			{"UsernameNull", []byte(`{"username":null,"password":"` + password + `"}`), http.StatusUnprocessableEntity, "body.username", ""},
			{"PasswordBool", []byte(`{"username":"` + user + `","password":true}`), http.StatusUnprocessableEntity, "body.password", ""},
			{"PasswordObject", []byte(`{"username":"` + user + `","password":{"value":"` + password + `"}}`), http.StatusUnprocessableEntity, "body.password", ""},
			{"UnknownField", []byte(`{"username":"` + user + `","password":"` + password + `","admin":true}`), http.StatusUnprocessableEntity, "body.admin", ""},
			{"Oversize", pad(valid), http.StatusRequestEntityTooLarge, "", ""},
			{"InvalidUTF8Password", []byte(`{"username":"` + user + `","password":"` + password + "\xff" + `"}`), http.StatusBadRequest, "", ""},
			{"InvalidUTF8Username", []byte(`{"username":"` + user + "\xc3\x28" + `","password":"` + password + `"}`), http.StatusBadRequest, "", ""},
			{"InvalidUTF8OutsideStrings", []byte(valid[:len(valid)-1] + "\xff}"), http.StatusBadRequest, "", ""},
		}
	}
	refreshCases := func(token string) []badBody {
		valid := `{"refresh_token":"` + token + `"}`
		return []badBody{
			{"EmptyBody", nil, http.StatusBadRequest, "", ""},
			{"Null", []byte(`null`), http.StatusUnprocessableEntity, "", ""},
			{"MalformedJSON", []byte(valid[:len(valid)-1]), http.StatusBadRequest, "", ""},
			{"MissingToken", []byte(`{}`), http.StatusUnprocessableEntity, "body", "refresh_token"},
			{"TokenNumber", []byte(`{"refresh_token":42}`), http.StatusUnprocessableEntity, "body.refresh_token", ""},
			{"TokenArray", []byte(`{"refresh_token":["` + token + `"]}`), http.StatusUnprocessableEntity, "body.refresh_token", ""},
			{"UnknownField", []byte(`{"refresh_token":"` + token + `","all":true}`), http.StatusUnprocessableEntity, "body.all", ""},
			{"Oversize", pad(valid), http.StatusRequestEntityTooLarge, "", ""},
			{"InvalidUTF8", []byte(`{"refresh_token":"` + token + "\xfe" + `"}`), http.StatusBadRequest, "", ""},
		}
	}
	ops := []struct {
		name  string
		path  string
		cases []badBody
	}{
		{"Register", "/v1/auth/register", append(credentialCases("mallory", "password-mallory"),
			badBody{"DisplayNameNumber", []byte(`{"username":"mallory","password":"password-mallory","display_name":7}`), http.StatusUnprocessableEntity, "body.display_name", ""},
			badBody{"InvalidUTF8DisplayName", []byte(`{"username":"mallory","password":"password-mallory","display_name":"Mal` + "\xed\xa0\x80" + `"}`), http.StatusBadRequest, "", ""},
		)},
		{"Login", "/v1/auth/login", credentialCases("alice", "password-alice")},
		{"Refresh", "/v1/auth/refresh", refreshCases(rt)},
		{"Logout", "/v1/auth/logout", refreshCases(rt)},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for _, tt := range op.cases {
				t.Run(tt.name, func(t *testing.T) {
					before := MustStored(t, c.DatabaseURL)
					p := MustPostRaw(t, r.URL+op.path, tt.body).MustProblem(t, tt.want)
					if tt.wantLocation != "" {
						MustLocation(t, p, tt.wantLocation, tt.wantMessage)
					}
					if after := MustStored(t, c.DatabaseURL); after != before {
						t.Fatalf("stored %+v after a refused request, before %+v", after, before)
					}
				})
			}
		})
	}

	// The refresh token survived every refused refresh and logout.
	MustSession(t, anon(r).Do(t, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt}), http.StatusOK)
}

// TestRouting: paths and methods the API does not have answer problem+json.
func TestRouting(t *testing.T) {
	t.Parallel()
	_, r := MustServe(t)
	for _, tt := range []struct {
		name, method, path string
		want               int
		wantAllow          string
	}{
		{"UnknownPath", http.MethodGet, "/nope", http.StatusNotFound, ""},
		{"UnknownAPIPath", http.MethodGet, "/v1/nope", http.StatusNotFound, ""},
		{"UnknownVersion", http.MethodPost, "/v2/auth/login", http.StatusNotFound, ""},
		{"RootWrongMethod", http.MethodPost, "/", http.StatusMethodNotAllowed, "GET"},
		{"WrongMethodRegister", http.MethodGet, "/v1/auth/register", http.StatusMethodNotAllowed, "POST"},
		{"WrongMethodLogout", http.MethodDelete, "/v1/auth/logout", http.StatusMethodNotAllowed, "POST"},
		{"WrongMethodMe", http.MethodPost, "/v1/me", http.StatusMethodNotAllowed, "GET"},
		{"WrongMethodUserByName", http.MethodPut, "/v1/users/by-name/alice", http.StatusMethodNotAllowed, "GET"},
		{"WrongMethodHealthz", http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "GET"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, r.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp := MustSend(t, req)
			resp.MustProblem(t, tt.want)
			if tt.wantAllow != "" && !strings.Contains(resp.Header.Get("Allow"), tt.wantAllow) {
				t.Fatalf("Allow %q, want it to list %s", resp.Header.Get("Allow"), tt.wantAllow)
			}
		})
	}
}

// TestRoot: GET / points to the documentation, in the body for people
// with curl and in a Link header for tools, since Parley serves no pages.
func TestRoot(t *testing.T) {
	t.Parallel()
	_, r := MustServe(t)
	resp := anon(r).Do(t, http.MethodGet, "/", nil)
	var home struct{ Docs, OpenAPI string }
	resp.JSON(t, &home)
	if resp.Status != http.StatusOK || home.Docs != "/docs" || home.OpenAPI != "/openapi.yaml" {
		t.Fatalf("GET /: %d %s, want 200 pointing to /docs and /openapi.yaml", resp.Status, resp.Body)
	}
	if link := resp.Header.Get("Link"); !strings.Contains(link, `</docs>; rel="service-doc"`) {
		t.Fatalf("Link %q, want </docs> as service-doc", link)
	}
	// Where it points answers.
	if docs := anon(r).Do(t, http.MethodGet, home.Docs, nil); docs.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", home.Docs, docs.Status)
	}
}

// TestOperational: the health, readiness and documentation endpoints.
func TestOperational(t *testing.T) {
	t.Parallel()
	_, r := MustServe(t)
	var jsonDoc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	for _, tt := range []struct {
		name, path, wantType string
		check                func(t *testing.T, body []byte)
	}{
		{"Healthz", "/healthz", "", nil},
		{"Readyz", "/readyz", "", nil},
		{"OpenAPIYAML", "/openapi.yaml", "yaml", func(t *testing.T, body []byte) {
			for _, want := range []string{"openapi: 3.1", "/v1/auth/register:", "/v1/users/by-name/{username}:", "operationId: register"} {
				if !bytes.Contains(body, []byte(want)) {
					t.Fatalf("openapi.yaml lacks %q", want)
				}
			}
		}},
		{"OpenAPIJSON", "/openapi.json", "json", func(t *testing.T, body []byte) {
			if err := json.Unmarshal(body, &jsonDoc); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(jsonDoc.OpenAPI, "3.1") {
				t.Fatalf("openapi %q, want 3.1", jsonDoc.OpenAPI)
			}
			for _, p := range []string{"/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout", "/v1/me", "/v1/users/by-name/{username}"} {
				if jsonDoc.Paths[p] == nil {
					t.Fatalf("openapi.json lacks %s", p)
				}
			}
		}},
		{"Docs", "/docs", "text/html", func(t *testing.T, body []byte) {
			if !bytes.Contains(body, []byte("openapi")) {
				t.Fatalf("/docs does not load the document: %s", body)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := anon(r).Do(t, http.MethodGet, tt.path, nil)
			if resp.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", tt.path, resp.Status, resp.Body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, tt.wantType) {
				t.Fatalf("%s: content type %q, want %s", tt.path, ct, tt.wantType)
			}
			if tt.check != nil {
				tt.check(t, resp.Body)
			}
		})
	}
}

// Package client checks the contract from a generated client's side: the Go
// client in api/, generated from openapi.yaml, works against a real server,
// and the client in the repository is the one openapi.yaml generates.
package client

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/parley-chat/parley/api"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// MustClient returns a generated client that sends token, if any.
func MustClient(tb testing.TB, base, token string) *api.ClientWithResponses {
	tb.Helper()
	c, err := api.NewClientWithResponses(base, api.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return nil
	}))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestGeneratedClient walks a user's first session through the generated
// client: register, create a room, post (and repeat the post), read
// history, and get typed problems back.
func TestGeneratedClient(t *testing.T) {
	c := e2e.NewCluster(t)
	r := c.MustStart(t)
	ctx := t.Context()

	anon := MustClient(t, r.URL, "")
	reg, err := anon.RegisterWithResponse(ctx, api.RegisterRequest{Username: "Alice", Password: "correct horse"})
	if err != nil || reg.JSON201 == nil {
		t.Fatalf("register: %v %s", err, reg.Body)
	}
	if reg.JSON201.User.Username != "alice" || reg.JSON201.TokenType != "Bearer" {
		t.Fatalf("session %+v", reg.JSON201)
	}
	dup, err := anon.RegisterWithResponse(ctx, api.RegisterRequest{Username: "alice", Password: "correct horse"})
	if err != nil || dup.ApplicationproblemJSON409 == nil || *dup.ApplicationproblemJSON409.Status != http.StatusConflict {
		t.Fatalf("duplicate register: %v %d %s", err, dup.StatusCode(), dup.Body)
	}

	alice := MustClient(t, r.URL, reg.JSON201.AccessToken)
	room, err := alice.CreateRoomWithResponse(ctx, api.CreateRoomRequest{Name: "general", Visibility: api.CreateRoomRequestVisibilityPublic})
	if err != nil || room.JSON201 == nil || room.JSON201.LastSeq != 1 {
		t.Fatalf("create room: %v %s", err, room.Body)
	}
	roomID := room.JSON201.Id

	clientID := "m-1"
	first, err := alice.PostMessageWithResponse(ctx, roomID, api.PostMessageRequest{Body: "hello", ClientId: &clientID})
	if err != nil || first.JSON201 == nil {
		t.Fatalf("post: %v %s", err, first.Body)
	}
	again, err := alice.PostMessageWithResponse(ctx, roomID, api.PostMessageRequest{Body: "hello", ClientId: &clientID})
	if err != nil || again.JSON200 == nil || again.JSON200.Id != first.JSON201.Id {
		t.Fatalf("repeated post: %v %d %s", err, again.StatusCode(), again.Body)
	}
	blank, err := alice.PostMessageWithResponse(ctx, roomID, api.PostMessageRequest{Body: "   "})
	if err != nil || blank.ApplicationproblemJSON422 == nil || blank.ApplicationproblemJSON422.Errors == nil {
		t.Fatalf("blank post: %v %d %s", err, blank.StatusCode(), blank.Body)
	}

	zero := int64(0)
	hist, err := alice.ListMessagesWithResponse(ctx, roomID, &api.ListMessagesParams{After: &zero})
	if err != nil || hist.JSON200 == nil || len(hist.JSON200.Messages) != 1 || hist.JSON200.Messages[0].Seq != first.JSON201.Seq || hist.JSON200.HasMore {
		t.Fatalf("history: %v %s", err, hist.Body)
	}

	me, err := anon.GetMeWithResponse(ctx)
	if err != nil || me.ApplicationproblemJSON401 == nil || me.HTTPResponse.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("anonymous me: %v %d %s", err, me.StatusCode(), me.Body)
	}
}

// TestClientUpToDate fails when api/client.gen.go is not what the checked-in
// openapi.yaml generates.
func TestClientUpToDate(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	// The checked-in configuration, writing elsewhere.
	conf, err := os.ReadFile(filepath.Join(root, "api", "oapi-codegen.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "client.gen.go")
	conf = []byte(strings.Replace(string(conf), "\noutput: client.gen.go\n", "\noutput: "+out+"\n", 1))
	if !strings.Contains(string(conf), out) {
		t.Fatal("api/oapi-codegen.yaml has no line output: client.gen.go")
	}
	if err := os.WriteFile(filepath.Join(dir, "oapi-codegen.yaml"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "oapi-codegen", "-config", filepath.Join(dir, "oapi-codegen.yaml"), "openapi.yaml")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "api", "client.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("api/client.gen.go is stale: run make openapi")
	}
}

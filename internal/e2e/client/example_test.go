package client

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/parley-chat/parley/api"
	"github.com/parley-chat/parley/internal/e2e"
)

// The README's "Use the Go client" example, between the markers; the
// tests below run it and check the README shows it as it is here.

// README example begins
func quickstart(ctx context.Context, server, username string) (string, error) {
	parley, err := api.Register(ctx, server, api.RegisterRequest{Username: username, Password: "correct horse battery"})
	if err != nil {
		return "", err // an *api.Error with the problem, e.g. 409 when taken
	}
	created, err := parley.CreateRoomWithResponse(ctx, api.CreateRoomRequest{Name: "general", Visibility: api.CreateRoomRequestVisibilityPublic})
	if err != nil {
		return "", err
	}
	room := created.JSON201

	// Events reconnects with Last-Event-ID, refreshes the token on reauth,
	// and returns when ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for ev, err := range parley.RoomStream(room.Id, api.StreamOptions{}).Events(ctx) {
		if err != nil {
			return "", err // 403, 404, 422: not a member, no such room, bad cursor
		}
		switch e := ev.Payload.(type) {
		case *api.Ready: // live from here: post something
			if _, err := parley.PostMessageWithResponse(ctx, room.Id, api.PostMessageRequest{Body: "Hello, room!"}); err != nil {
				return "", err
			}
		case *api.Message:
			return e.Author.Username + ": " + e.Body, nil
		}
	}
	return "", ctx.Err()
}

// README example ends

// TestREADMEExample runs the README's Go example against a real server.
func TestREADMEExample(t *testing.T) {
	r := e2e.NewCluster(t).MustStart(t)
	got, err := quickstart(t.Context(), r.URL, "alice")
	if err != nil || got != "alice: Hello, room!" {
		t.Fatalf("quickstart: %q, %v", got, err)
	}
	t.Run("InREADME", func(t *testing.T) {
		_, file, _, _ := runtime.Caller(0)
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, example, _ := strings.Cut(string(src), "// README example begins\n")
		example, _, _ = strings.Cut(example, "\n// README example ends")
		readme, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		if example == "" || !strings.Contains(string(readme), example) {
			t.Fatal("README.md does not show the example of internal/e2e/client/example_test.go as it is")
		}
	})
}

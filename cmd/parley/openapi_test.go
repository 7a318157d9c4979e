package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/httpapi"
)

// checkedInOpenAPI is the openapi.yaml at the repository root, found from
// this file's place in the repository.
func checkedInOpenAPI(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "openapi.yaml")
}

// TestOpenAPIUpToDate fails when the checked-in openapi.yaml differs from
// what `parley openapi` prints.
func TestOpenAPIUpToDate(t *testing.T) {
	var got bytes.Buffer
	if err := printOpenAPI(&got); err != nil {
		t.Fatal(err)
	}
	path := checkedInOpenAPI(t)
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the checked-in document: %v; run `make openapi` to create it", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("%s is stale: run `make openapi` and commit the result\n%s", path, firstDifference(string(want), got.String()))
	}
}

// firstDifference describes the first line where the checked-in document
// (old) and the rendered one (new) differ.
func firstDifference(old, new string) string {
	ol, nl := strings.Split(old, "\n"), strings.Split(new, "\n")
	for i := range max(len(ol), len(nl)) {
		var o, n string
		if i < len(ol) {
			o = ol[i]
		}
		if i < len(nl) {
			n = nl[i]
		}
		if o != n {
			return fmt.Sprintf("first difference at line %d:\n  checked in: %q\n  rendered:   %q", i+1, o, n)
		}
	}
	return "the documents differ"
}

// TestOpenAPIOperations checks what client generators need of every
// operation: a unique operationId, a summary, a tag, and documented errors.
func TestOpenAPIOperations(t *testing.T) {
	doc := httpapi.New(httpapi.Options{}).OpenAPI()
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	ids := map[string]string{}
	count := 0
	for path, item := range doc.Paths {
		for method, op := range map[string]*huma.Operation{
			"GET": item.Get, "PUT": item.Put, "POST": item.Post, "DELETE": item.Delete,
			"OPTIONS": item.Options, "HEAD": item.Head, "PATCH": item.Patch, "TRACE": item.Trace,
		} {
			if op == nil {
				continue
			}
			count++
			name := method + " " + path
			t.Run(name, func(t *testing.T) {
				if op.OperationID == "" {
					t.Fatal("no operationId")
				}
				if other, dup := ids[op.OperationID]; dup {
					t.Fatalf("operationId %q is also %s", op.OperationID, other)
				}
				ids[op.OperationID] = name
				if strings.TrimSpace(op.Summary) == "" {
					t.Error("no summary")
				}
				if len(op.Tags) == 0 || slices.Contains(op.Tags, "") {
					t.Errorf("tags %q, want at least one", op.Tags)
				}
				var clientErrors []string
				for status, resp := range op.Responses {
					if strings.HasPrefix(status, "4") || strings.HasPrefix(status, "5") {
						if resp.Content["application/problem+json"] == nil {
							t.Errorf("error response %s is not application/problem+json", status)
						}
						if strings.HasPrefix(status, "4") {
							clientErrors = append(clientErrors, status)
						}
					}
				}
				if len(clientErrors) == 0 {
					t.Error("no 4xx response documented")
				}
				if len(op.Security) > 0 && op.Responses["401"] == nil {
					t.Error("needs a bearer token but does not document 401")
				}
			})
		}
	}
	// The account operations at least; the document must not lose them.
	for _, id := range []string{"register", "login", "refresh", "logout", "getMe", "getUserByName"} {
		if _, ok := ids[id]; !ok {
			t.Errorf("no operation %q in the document", id)
		}
	}
	if count == 0 {
		t.Fatal("the document has no operations")
	}
}

// TestOpenAPIStream: the room stream is documented as text/event-stream
// with one frame schema per event type.
func TestOpenAPIStream(t *testing.T) {
	doc := httpapi.New(httpapi.Options{}).OpenAPI()
	item := doc.Paths["/v1/rooms/{room_id}/events"]
	if item == nil || item.Get == nil {
		t.Fatal("no GET /v1/rooms/{room_id}/events")
	}
	mt := item.Get.Responses["200"].Content["text/event-stream"]
	if mt == nil || mt.Schema == nil || mt.Schema.Items == nil {
		t.Fatal("200 is not documented as text/event-stream frames")
	}
	got := map[string]bool{}
	for _, frame := range mt.Schema.Items.OneOf {
		if ev := frame.Properties["event"]; ev != nil && len(ev.Enum) == 1 {
			got[ev.Enum[0].(string)] = frame.Properties["data"] != nil
		}
	}
	for _, name := range []string{"message", "member.joined", "member.left", "room.updated", "room.deleted", "ready", "reauth"} {
		if !got[name] {
			t.Errorf("no frame schema with data for event %q", name)
		}
	}
}

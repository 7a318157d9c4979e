package main

import (
	"bytes"
	"encoding/json"
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

// checkedIn is a file at the repository root, found from this file's place
// in the repository.
func checkedIn(tb testing.TB, name string) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", name)
}

// TestOpenAPIUpToDate fails when a checked-in document differs from what
// `parley openapi` prints: openapi.yaml (3.1) and openapi-3.0.yaml (the
// 3.0.3 downgrade for older generators).
func TestOpenAPIUpToDate(t *testing.T) {
	for _, tt := range []struct {
		file string
		args []string
	}{
		{"openapi.yaml", nil},
		{"openapi-3.0.yaml", []string{"3.0"}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			var got bytes.Buffer
			if err := printOpenAPI(tt.args, &got); err != nil {
				t.Fatal(err)
			}
			path := checkedIn(t, tt.file)
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read the checked-in document: %v; run `make openapi` to create it", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("%s is stale: run `make openapi` and commit the result\n%s", path, firstDifference(string(want), got.String()))
			}
		})
	}
}

// TestOpenAPI30 walks the 3.0.3 downgrade for what only 3.1 allows, which
// Huma's downgrade leaves in place and 3.0 generators reject or misread.
func TestOpenAPI30(t *testing.T) {
	b, err := httpapi.New(httpapi.Options{}).OpenAPI().Downgrade()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Fatalf("openapi %q, want 3.0.x", v)
	}
	for _, key := range []string{"webhooks", "jsonSchemaDialect"} {
		if _, ok := doc[key]; ok {
			t.Errorf("3.1-only top-level %s", key)
		}
	}
	if lic, _ := doc["info"].(map[string]any)["license"].(map[string]any); lic == nil || lic["identifier"] != nil || lic["url"] == nil {
		t.Errorf("info.license %v: want name and url, no identifier (3.1 only)", lic)
	}
	only31 := []string{"const", "prefixItems", "$schema", "$defs", "unevaluatedProperties", "unevaluatedItems",
		"dependentRequired", "dependentSchemas", "contentMediaType", "contentEncoding", "if", "then", "else", "patternProperties", "propertyNames"}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				p := path + "/" + k
				switch {
				case slices.Contains(only31, k) && !strings.HasSuffix(path, "/properties"):
					t.Errorf("%s: 3.1-only keyword %s", p, k)
				case k == "type" && !strings.HasSuffix(path, "/properties"):
					if _, isList := child.([]any); isList {
						t.Errorf("%s: a list of types is 3.1 only (use nullable)", p)
					}
				case (k == "exclusiveMinimum" || k == "exclusiveMaximum") && !strings.HasSuffix(path, "/properties"):
					if _, isBool := child.(bool); !isBool {
						t.Errorf("%s: numeric %s is 3.1 only", p, k)
					}
				case k == "examples" && strings.Contains(path, "schema") && !strings.HasSuffix(path, "/properties"):
					t.Errorf("%s: examples in a schema is 3.1 only (3.0 has example)", p)
				}
				walk(p, child)
			}
		case []any:
			for i, child := range v {
				walk(fmt.Sprintf("%s/%d", path, i), child)
			}
		}
	}
	walk("", doc)
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

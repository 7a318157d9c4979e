package httpapi

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

func TestJSONDepth(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		{"Scalar", `"x"`, 0},
		{"Flat", `{"a":1,"b":"c"}`, 1},
		{"Nested", `{"a":[{"b":[]}]}`, 4},
		{"BracketsInStrings", `{"a":"[[[{{{"}`, 1},
		{"EscapedQuote", `{"a":"\"[[["}`, 1},
		{"EscapedBackslash", `{"a":"\\","b":[[1]]}`, 3},
		{"Unbalanced", `]]]{`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jsonDepth([]byte(tt.body), 100); got != tt.want {
				t.Fatalf("jsonDepth(%s) = %d, want %d", tt.body, got, tt.want)
			}
		})
	}
	t.Run("StopsPastLimit", func(t *testing.T) {
		deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
		if got := jsonDepth([]byte(deep), maxBodyDepth); got != maxBodyDepth+1 {
			t.Fatalf("got %d, want %d", got, maxBodyDepth+1)
		}
	})
}

func TestBoundEchoes(t *testing.T) {
	long := strings.Repeat("é", 5000)
	tests := []struct {
		name     string
		location string
		value    any
		want     any
	}{
		{"Password", "body.password", "hunter2hunter2", nil},
		{"PasswordWrongType", "body.password", 12345.0, nil},
		{"RefreshToken", "body.refresh_token", "tok", nil},
		{"AccessTokenQuery", "query.access_token", "tok", nil},
		{"Ticket", "query.ticket", "tik", nil},
		{"AuthorizationHeader", "header.Authorization", "Bearer x", nil},
		{"InsideSecret", "body.password[0]", "x", nil},
		{"WholeBody", "body", `{"password":"x"}`, nil},
		{"Nested", "body.display_name", map[string]any{"a": []any{1.0}}, nil},
		{"Array", "body.name", []any{"x"}, nil},
		{"ShortString", "body.display_name", "Alice", "Alice"},
		{"Number", "query.limit", 500.0, 500.0},
		{"Bool", "body.x", true, true},
		{"Long", "body.display_name", long, strings.Repeat("é", maxEcho) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			em := &huma.ErrorModel{Status: 422, Title: "Unprocessable Entity", Errors: []*huma.ErrorDetail{
				{Message: "expected something", Location: tt.location, Value: tt.value},
			}}
			out, err := boundEchoes(nil, "422", em)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*huma.ErrorModel).Errors[0].Value
			if s, ok := got.(string); ok && utf8.RuneCountInString(s) > maxEcho+1 {
				t.Fatalf("echoed %d characters", utf8.RuneCountInString(s))
			}
			switch want := tt.want.(type) {
			case nil:
				if got != nil {
					t.Fatalf("value %v, want none", got)
				}
			default:
				if got != want {
					t.Fatalf("value %v, want %v", got, want)
				}
			}
		})
	}
	t.Run("LongLocationAndMessage", func(t *testing.T) {
		em := &huma.ErrorModel{Errors: []*huma.ErrorDetail{{Message: long, Location: "body." + long}}}
		out, _ := boundEchoes(nil, "422", em)
		d := out.(*huma.ErrorModel).Errors[0]
		if utf8.RuneCountInString(d.Message) > maxEcho+1 || utf8.RuneCountInString(d.Location) > maxEcho+1 {
			t.Fatalf("message %d and location %d characters", utf8.RuneCountInString(d.Message), utf8.RuneCountInString(d.Location))
		}
	})
	t.Run("NotAnError", func(t *testing.T) {
		v := map[string]string{"a": long}
		out, _ := boundEchoes(nil, "200", v)
		if out.(map[string]string)["a"] != long {
			t.Fatal("changed a success body")
		}
	})
}

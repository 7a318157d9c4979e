package httpapi

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// What an error body may echo of the input (the contract's Limits): never
// a secret, at most maxEcho characters of anything else, and no nested
// structure.
const (
	maxEcho = 200
	// maxBodyDepth bounds how deeply a request body may nest; Parley's
	// bodies are flat objects, and a deeply nested one would come back in
	// validation errors as a structure some JSON parsers cannot read.
	maxBodyDepth = 32
)

// secretFields are the input fields whose values an error never echoes,
// wherever they appear (body, query, header).
var secretFields = map[string]bool{
	"password":      true,
	"access_token":  true,
	"refresh_token": true,
	"ticket":        true,
	"token":         true,
	"authorization": true,
}

// boundEchoes is a Huma transformer over every response: in error bodies
// it drops the values of secret fields, of the body as a whole (which holds
// every field) and of anything not a scalar, and cuts the rest, the
// locations and the messages to maxEcho characters.
func boundEchoes(_ huma.Context, _ string, v any) (any, error) {
	em, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	em.Detail = truncate(em.Detail)
	for _, d := range em.Errors {
		if d == nil {
			continue
		}
		d.Value = echoValue(d.Location, d.Value)
		d.Location = truncate(d.Location)
		d.Message = truncate(d.Message)
	}
	return em, nil
}

// echoValue is what an error about location may echo of its value.
func echoValue(location string, v any) any {
	if location == "body" || isSecretLocation(location) {
		return nil
	}
	switch x := v.(type) {
	case string:
		return truncate(x)
	case bool, float64, float32, int, int64, int32, uint, uint64, uint32, json.Number:
		return x
	}
	return nil // nil, objects, arrays and anything else
}

// isSecretLocation reports whether a location such as "body.password" or
// "query.access_token" names a secret field (or something inside one).
func isSecretLocation(location string) bool {
	for _, part := range strings.FieldsFunc(strings.ToLower(location), func(r rune) bool {
		return r == '.' || r == '[' || r == ']'
	}) {
		if secretFields[part] {
			return true
		}
	}
	return false
}

// truncate cuts s to at most maxEcho characters.
func truncate(s string) string {
	if utf8.RuneCountInString(s) <= maxEcho {
		return s
	}
	n := 0
	for i := range s {
		if n == maxEcho {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// jsonDepth is how deeply a JSON text nests arrays and objects, counting
// brackets outside strings; it does not check the text is valid JSON. It
// stops counting once past limit.
func jsonDepth(b []byte, limit int) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return deepest
				}
			}
		case ']', '}':
			depth = max(0, depth-1)
		}
	}
	return deepest
}

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a call the server refused: its HTTP status and the RFC 9457
// problem body it answered with. Every call through a client from New
// returns one for a 4xx or 5xx answer; find it with errors.As.
type Error struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Title, Status, Detail and Errors are the problem body's fields
	// (Status is 0 when the body was not a problem).
	Title  string
	Status int
	Detail string
	Errors []ErrorDetail
	// RetryAfter is the answer's Retry-After (429 and 503), 0 if none.
	RetryAfter time.Duration
	// Header is the answer's header.
	Header http.Header
}

func (e *Error) Error() string {
	msg := e.Title
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("parley: %d %s", e.StatusCode, msg)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	for _, d := range e.Errors {
		if d.Message == nil {
			continue
		}
		if d.Location != nil {
			s += fmt.Sprintf("; %s: %s", *d.Location, *d.Message)
		} else {
			s += "; " + *d.Message
		}
	}
	return s
}

// ErrorStatus is the HTTP status of the *Error in err's chain, 0 if there
// is none (the call failed before an answer, or err is nil).
func ErrorStatus(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// maxProblemBytes bounds how much of an error body is read.
const maxProblemBytes = 64 << 10

// errorFromResponse reads and closes resp's body and returns it as an
// *Error.
func errorFromResponse(resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{StatusCode: resp.StatusCode, Header: resp.Header, RetryAfter: retryAfter(resp.Header)}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemBytes))
	var p ErrorModel
	if strings.Contains(resp.Header.Get("Content-Type"), "json") && json.Unmarshal(body, &p) == nil {
		if p.Title != nil {
			e.Title = *p.Title
		}
		if p.Status != nil {
			e.Status = int(*p.Status)
		}
		if p.Detail != nil {
			e.Detail = *p.Detail
		}
		if p.Errors != nil {
			e.Errors = *p.Errors
		}
	}
	return e
}

// retryAfter reads a Retry-After header in whole seconds (what Parley
// sends) or as an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

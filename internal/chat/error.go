package chat

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an Error; the HTTP layer maps each code to one status.
type Code string

// Error codes.
const (
	ENotFound        Code = "not_found"       // no such thing, or not visible to the caller
	EForbidden       Code = "forbidden"       // visible, but the caller may not do this
	EUnauthenticated Code = "unauthenticated" // no, bad or expired credentials
	EConflict        Code = "conflict"        // clashes with the current state
	EInvalid         Code = "invalid"         // the input breaks a rule
	EUnavailable     Code = "unavailable"     // a dependency is down or the replica is full; retry later
	ETooMany         Code = "too_many"        // a rate limit or cap refused the request; retry later
	EInternal        Code = "internal"        // a bug or an unexpected failure
)

// Error is Parley's one error type. Message is safe to show to clients;
// Err, when set, is the underlying cause and is only ever logged.
type Error struct {
	Code    Code
	Message string
	// Field names the input location of an EInvalid error, e.g. "body.name".
	Field string
	// RetryAfter, when set, is how long the client should wait before
	// trying again (ETooMany, EUnavailable).
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EInvalid error about one input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EInternal for errors that are not ours.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// TooMany returns an ETooMany error: a limit refused the request, and the
// client may try again after retryAfter.
func TooMany(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Code: ETooMany, RetryAfter: retryAfter, Message: fmt.Sprintf(format, args...)}
}

// Busy returns an EUnavailable error for a replica that is at capacity: the
// client may try again after retryAfter.
func Busy(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Code: EUnavailable, RetryAfter: retryAfter, Message: fmt.Sprintf(format, args...)}
}

//go:build !linux

package limits

import (
	"errors"
	"time"
)

// setUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's. Keep-alives
// still find dead idle peers, more slowly.
func setUserTimeout(uintptr, time.Duration) error { return nil }

func userTimeout(uintptr) (time.Duration, error) {
	return 0, errors.New("TCP_USER_TIMEOUT is not supported on this platform")
}

package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// LimitsConfig is the configuration of the contract's limits; 0 means no
// limit for each count and rate.
type LimitsConfig struct {
	PostRate             float64 // writes per user per second
	PostBurst            int
	LoginFailures        int // per username and client IP, per window
	LoginFailuresPerUser int // per username, all IPs together, per window
	LoginWindow          time.Duration
	StreamsPerUser       int // per replica
	MaxStreams           int // per replica
	TrustedProxies       []netip.Prefix
	// TCPUserTimeout is how long sent data may stay unacknowledged before
	// the kernel drops a connection: a vanished client's stream ends after
	// it (plus at most a heartbeat).
	TCPUserTimeout time.Duration
}

// defaultLimits are the contract's defaults.
var defaultLimits = LimitsConfig{
	PostRate:             10,
	PostBurst:            20,
	LoginFailures:        10,
	LoginFailuresPerUser: 100,
	LoginWindow:          10 * time.Minute,
	StreamsPerUser:       32,
	MaxStreams:           10000,
	TCPUserTimeout:       30 * time.Second,
}

// limitFlags defines the limits' flags through ef (defaults from the
// environment; values that do not parse are recorded in ef.errs). The
// returned function finishes parsing after the flag set is parsed.
func (l *LimitsConfig) limitFlags(ef envFlags) func() {
	*l = defaultLimits
	ef.float(&l.PostRate, "post-rate", "PARLEY_POST_RATE", l.PostRate, "writes (posts, edits, deletes, reactions) per user per second; 0: no limit")
	ef.int(&l.PostBurst, "post-burst", "PARLEY_POST_BURST", l.PostBurst, "writes per user in a burst")
	ef.int(&l.LoginFailures, "login-failures", "PARLEY_LOGIN_FAILURES", l.LoginFailures, "failed logins per username and client IP per window; 0: no limit")
	ef.int(&l.LoginFailuresPerUser, "login-failures-per-user", "PARLEY_LOGIN_FAILURES_PER_USER", l.LoginFailuresPerUser, "failed logins per username per window, all IPs together; 0: no limit")
	ef.int(&l.StreamsPerUser, "streams-per-user", "PARLEY_STREAMS_PER_USER", l.StreamsPerUser, "open streams per user on this replica; 0: no limit")
	ef.int(&l.MaxStreams, "max-streams", "PARLEY_MAX_STREAMS", l.MaxStreams, "open streams on this replica; 0: no limit")
	ef.dur(&l.LoginWindow, "login-window", "PARLEY_LOGIN_WINDOW", l.LoginWindow, "window of the failed-login limits")
	ef.dur(&l.TCPUserTimeout, "tcp-user-timeout", "PARLEY_TCP_USER_TIMEOUT", l.TCPUserTimeout, "drop a connection whose sent data stays unacknowledged this long; 0: the kernel's default")
	var proxies string
	ef.str(&proxies, "trusted-proxies", "PARLEY_TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed")
	return func() {
		for _, s := range strings.Split(proxies, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			p, err := parsePrefix(s)
			if err != nil {
				*ef.errs = append(*ef.errs, fmt.Errorf("PARLEY_TRUSTED_PROXIES: %q is not a CIDR like 10.0.0.0/8 or an address", s))
				continue
			}
			l.TrustedProxies = append(l.TrustedProxies, p)
		}
	}
}

// parsePrefix parses a CIDR, or a single address as a prefix of its own.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// validate checks the limits make sense; reserved is how many file
// descriptors the replica needs besides its streams (the database pool,
// the listener, log files).
func (l LimitsConfig) validate(reserved int) error {
	var errs []error
	if l.PostRate < 0 {
		errs = append(errs, errors.New("PARLEY_POST_RATE (-post-rate) must not be negative"))
	}
	if l.PostRate > 0 && l.PostBurst < 1 {
		errs = append(errs, errors.New("PARLEY_POST_BURST (-post-burst) must be at least 1 while PARLEY_POST_RATE is set"))
	}
	for _, n := range []struct {
		v    int
		name string
	}{
		{l.PostBurst, "PARLEY_POST_BURST (-post-burst)"},
		{l.LoginFailures, "PARLEY_LOGIN_FAILURES (-login-failures)"},
		{l.LoginFailuresPerUser, "PARLEY_LOGIN_FAILURES_PER_USER (-login-failures-per-user)"},
		{l.StreamsPerUser, "PARLEY_STREAMS_PER_USER (-streams-per-user)"},
		{l.MaxStreams, "PARLEY_MAX_STREAMS (-max-streams)"},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", n.name))
		}
	}
	if (l.LoginFailures > 0 || l.LoginFailuresPerUser > 0) && l.LoginWindow < time.Second {
		errs = append(errs, errors.New("PARLEY_LOGIN_WINDOW (-login-window) must be at least 1s"))
	}
	if l.TCPUserTimeout < 0 {
		errs = append(errs, errors.New("PARLEY_TCP_USER_TIMEOUT (-tcp-user-timeout) must not be negative"))
	}
	if files, ok := openFileLimit(); ok && l.MaxStreams > 0 && uint64(l.MaxStreams+reserved) > files {
		errs = append(errs, fmt.Errorf("PARLEY_MAX_STREAMS (-max-streams) %d plus %d other files is over the open-file limit of %d: lower it or raise the limit (ulimit -n)",
			l.MaxStreams, reserved, files))
	}
	return errors.Join(errs...)
}

// openFileLimit is the process's open-file limit (Go raises the soft limit
// to the hard one at start).
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return rl.Cur, true
}

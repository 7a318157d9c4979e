package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/postgres"
)

// Config is Parley's configuration: flags, else PARLEY_* variables, else
// defaults. Validate fails fast with a message naming the setting.
type Config struct {
	Addr        string
	DatabaseURL string
	DataDir     string
	JWTSecret   string
	JWTIssuer   string
	JWTAudience string
	AccessTTL   time.Duration
	RefreshTTL  time.Duration
	Heartbeat   time.Duration
	// StreamTicketTTL is how long a stream ticket stays valid unused.
	StreamTicketTTL time.Duration
	// PresenceTimeout: a replica that dies takes its users offline within
	// it; PresenceGrace: a user goes offline once their last stream has
	// been closed this long.
	PresenceTimeout time.Duration
	PresenceGrace   time.Duration
	// SignalInterval is how often a replica sends its batch of ephemeral
	// events.
	SignalInterval time.Duration
	CORSOrigins    []string
	// TLSCertFile and TLSKeyFile, both set, serve HTTPS with HTTP/2.
	TLSCertFile string
	TLSKeyFile  string
	// DBTimeout bounds every database call; a call that takes longer
	// answers 503.
	DBTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers, ReadTimeout
	// reading its body (not the life of a stream).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	Limits            LimitsConfig
	// PprofAddr, when set, serves net/http/pprof on a listener of its own
	// (for profiling under load; keep it on a loopback address).
	PprofAddr string
}

// minPresenceTimeout keeps presence heartbeats (a sixth of the timeout)
// from hammering the database.
const minPresenceTimeout = time.Second

// maxHeartbeat keeps heartbeats well under the SSE write deadline.
const maxHeartbeat = 5 * time.Minute

// parseConfig reads args (after the subcommand) and the environment.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var errs []error
	ef := envFlags{fs: fs, getenv: getenv, errs: &errs}
	str, dur := ef.str, ef.dur
	// Secrets (a database URL may hold a password) are read from the
	// environment after parsing, so -h never prints them as defaults.
	var secrets []func()
	secret := func(p *string, flagName, env, usage string) {
		fs.StringVar(p, flagName, "", usage+" ("+env+")")
		secrets = append(secrets, func() {
			if *p == "" {
				*p = getenv(env)
			}
		})
	}
	var cors string
	str(&c.Addr, "addr", "PARLEY_ADDR", ":8080", "listen address")
	secret(&c.DatabaseURL, "database-url", "PARLEY_DATABASE_URL", "Postgres URL; unset: a private cluster under the data dir")
	str(&c.DataDir, "data-dir", "PARLEY_DATA_DIR", "./.parley", "where the private cluster and generated JWT secret live")
	secret(&c.JWTSecret, "jwt-secret", "PARLEY_JWT_SECRET", "HS256 key, at least 32 bytes; required with a database URL")
	str(&c.JWTIssuer, "jwt-issuer", "PARLEY_JWT_ISSUER", "parley", "access token iss")
	str(&c.JWTAudience, "jwt-audience", "PARLEY_JWT_AUDIENCE", "parley", "access token aud")
	dur(&c.AccessTTL, "access-ttl", "PARLEY_ACCESS_TTL", 15*time.Minute, "access token lifetime")
	dur(&c.RefreshTTL, "refresh-ttl", "PARLEY_REFRESH_TTL", 720*time.Hour, "refresh token lifetime")
	dur(&c.Heartbeat, "heartbeat", "PARLEY_HEARTBEAT", 15*time.Second, "SSE heartbeat interval")
	dur(&c.StreamTicketTTL, "stream-ticket-ttl", "PARLEY_STREAM_TICKET_TTL", 30*time.Second, "stream ticket lifetime")
	dur(&c.PresenceTimeout, "presence-timeout", "PARLEY_PRESENCE_TIMEOUT", chat.PresenceTimeout, "a replica that dies takes its users offline within this")
	dur(&c.PresenceGrace, "presence-grace", "PARLEY_PRESENCE_GRACE", chat.PresenceGrace, "a user goes offline once their last stream has been closed this long")
	dur(&c.SignalInterval, "signal-interval", "PARLEY_SIGNAL_INTERVAL", postgres.DefaultSignalInterval, "how often ephemeral events (typing, read receipts, presence) are sent between replicas, in one NOTIFY transaction")
	str(&cors, "cors-origins", "PARLEY_CORS_ORIGINS", "", "comma-separated allowed origins")
	str(&c.TLSCertFile, "tls-cert-file", "PARLEY_TLS_CERT_FILE", "", "PEM certificate chain; with -tls-key-file serves HTTPS and HTTP/2")
	str(&c.TLSKeyFile, "tls-key-file", "PARLEY_TLS_KEY_FILE", "", "PEM private key of -tls-cert-file")
	dur(&c.DBTimeout, "db-timeout", "PARLEY_DB_TIMEOUT", 5*time.Second, "deadline of each database call; a request whose call misses it answers 503")
	dur(&c.ReadHeaderTimeout, "read-header-timeout", "PARLEY_READ_HEADER_TIMEOUT", 10*time.Second, "time a client has to send a request's headers")
	dur(&c.ReadTimeout, "read-timeout", "PARLEY_READ_TIMEOUT", 10*time.Second, "time a client has to send a request's body (streams are not bounded)")
	str(&c.PprofAddr, "pprof-addr", "PARLEY_PPROF_ADDR", "", "address serving /debug/pprof/ on a listener of its own (e.g. 127.0.0.1:6060); unset: none")
	parseLimits := c.Limits.limitFlags(ef)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	parseLimits()
	for _, read := range secrets {
		read()
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	for _, o := range strings.Split(cors, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CORSOrigins = append(c.CORSOrigins, o)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// validate checks the settings serve needs.
func (c Config) validate(needSecret bool) error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("PARLEY_ADDR (-addr) must not be empty"))
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("PARLEY_DATA_DIR (-data-dir) must not be empty without PARLEY_DATABASE_URL"))
	}
	if needSecret && c.DatabaseURL != "" && c.JWTSecret == "" {
		errs = append(errs, errors.New("PARLEY_JWT_SECRET (-jwt-secret) is required when PARLEY_DATABASE_URL is set"))
	}
	if needSecret && c.JWTSecret != "" && len(c.JWTSecret) < auth.MinSecretLen {
		errs = append(errs, fmt.Errorf("PARLEY_JWT_SECRET (-jwt-secret) must be at least %d bytes, got %d", auth.MinSecretLen, len(c.JWTSecret)))
	}
	if c.JWTIssuer == "" || c.JWTAudience == "" {
		errs = append(errs, errors.New("PARLEY_JWT_ISSUER and PARLEY_JWT_AUDIENCE must not be empty"))
	}
	if c.AccessTTL <= 0 {
		errs = append(errs, errors.New("PARLEY_ACCESS_TTL (-access-ttl) must be positive"))
	}
	if c.RefreshTTL <= 0 {
		errs = append(errs, errors.New("PARLEY_REFRESH_TTL (-refresh-ttl) must be positive"))
	}
	if c.StreamTicketTTL <= 0 {
		errs = append(errs, errors.New("PARLEY_STREAM_TICKET_TTL (-stream-ticket-ttl) must be positive"))
	}
	if c.PresenceTimeout < minPresenceTimeout {
		errs = append(errs, fmt.Errorf("PARLEY_PRESENCE_TIMEOUT (-presence-timeout) must be at least %s", minPresenceTimeout))
	}
	if c.PresenceGrace <= 0 || c.PresenceGrace > time.Minute {
		errs = append(errs, errors.New("PARLEY_PRESENCE_GRACE (-presence-grace) must be between 0 and 1m"))
	}
	if c.SignalInterval < time.Millisecond || c.SignalInterval > time.Second {
		errs = append(errs, errors.New("PARLEY_SIGNAL_INTERVAL (-signal-interval) must be between 1ms and 1s (ephemeral events must arrive within 1 s)"))
	}
	if c.Heartbeat <= 0 || c.Heartbeat > maxHeartbeat {
		errs = append(errs, fmt.Errorf("PARLEY_HEARTBEAT (-heartbeat) must be between 0 and %s", maxHeartbeat))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"PARLEY_DB_TIMEOUT (-db-timeout)", c.DBTimeout},
		{"PARLEY_READ_HEADER_TIMEOUT (-read-header-timeout)", c.ReadHeaderTimeout},
		{"PARLEY_READ_TIMEOUT (-read-timeout)", c.ReadTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("PARLEY_TLS_CERT_FILE (-tls-cert-file) and PARLEY_TLS_KEY_FILE (-tls-key-file) must be set together"))
	}
	if err := c.Limits.validate(poolSize + 64); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func osGetenv(k string) string { return os.Getenv(k) }

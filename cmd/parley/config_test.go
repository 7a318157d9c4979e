package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envFunc is a getenv over a fixed environment.
func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// defaults is the configuration with nothing set.
var defaults = Config{
	Addr:        ":8080",
	DataDir:     "./.parley",
	JWTIssuer:   "parley",
	JWTAudience: "parley",
	AccessTTL:   15 * time.Minute,
	RefreshTTL:  720 * time.Hour,
	Heartbeat:   15 * time.Second,
	Limits:      defaultLimits,

	StreamTicketTTL:   30 * time.Second,
	DBTimeout:         5 * time.Second,
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       10 * time.Second,
	PresenceTimeout:   30 * time.Second,
	PresenceGrace:     3 * time.Second,
	SignalInterval:    25 * time.Millisecond,
}

// with returns defaults changed by edit.
func with(edit func(*Config)) Config {
	c := defaults
	edit(&c)
	return c
}

const (
	testURL    = "postgres://parley@db.example/parley"
	testSecret = "0123456789abcdef0123456789abcdef" // 32 bytes
)

// TestConfig parses flags and environment as serve does (migrate when
// migrate is set) and validates the result: either the configuration comes
// out as want, or the error names the setting at fault.
func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		migrate bool // validate for migrate, which needs no secret
		want    Config
		wantErr []string // all in the error
	}{
		{name: "Defaults", want: defaults},
		{name: "Env", env: map[string]string{
			"PARLEY_ADDR":              "127.0.0.1:9000",
			"PARLEY_DATABASE_URL":      testURL,
			"PARLEY_DATA_DIR":          "/var/lib/parley",
			"PARLEY_JWT_SECRET":        testSecret,
			"PARLEY_JWT_ISSUER":        "iss",
			"PARLEY_JWT_AUDIENCE":      "aud",
			"PARLEY_ACCESS_TTL":        "5m",
			"PARLEY_REFRESH_TTL":       "24h",
			"PARLEY_HEARTBEAT":         "2s",
			"PARLEY_STREAM_TICKET_TTL": "5s",
			"PARLEY_CORS_ORIGINS":      " https://a.example , ,https://b.example",
			"PARLEY_UNRELATED_VAR":     "ignored",
		}, want: Config{
			Addr: "127.0.0.1:9000", DatabaseURL: testURL, DataDir: "/var/lib/parley", JWTSecret: testSecret,
			JWTIssuer: "iss", JWTAudience: "aud", AccessTTL: 5 * time.Minute, RefreshTTL: 24 * time.Hour,
			Heartbeat: 2 * time.Second, StreamTicketTTL: 5 * time.Second, CORSOrigins: []string{"https://a.example", "https://b.example"}, Limits: defaultLimits,
			DBTimeout: 5 * time.Second, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
			PresenceTimeout: 30 * time.Second, PresenceGrace: 3 * time.Second, SignalInterval: 25 * time.Millisecond,
		}},
		{name: "Flags", args: []string{
			"-addr", ":9001", "-database-url", testURL, "-data-dir", "d", "-jwt-secret", testSecret,
			"-jwt-issuer", "i", "-jwt-audience", "a", "-access-ttl", "1m", "-refresh-ttl", "2h",
			"-heartbeat", "3s", "-stream-ticket-ttl", "1m", "-cors-origins", "https://c.example",
		}, want: Config{
			Addr: ":9001", DatabaseURL: testURL, DataDir: "d", JWTSecret: testSecret, JWTIssuer: "i", JWTAudience: "a",
			AccessTTL: time.Minute, RefreshTTL: 2 * time.Hour, Heartbeat: 3 * time.Second, StreamTicketTTL: time.Minute, CORSOrigins: []string{"https://c.example"},
			Limits: defaultLimits, DBTimeout: 5 * time.Second, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
			PresenceTimeout: 30 * time.Second, PresenceGrace: 3 * time.Second, SignalInterval: 25 * time.Millisecond,
		}},
		{name: "TimeoutsEnv", env: map[string]string{"PARLEY_DB_TIMEOUT": "1500ms", "PARLEY_READ_HEADER_TIMEOUT": "3s", "PARLEY_READ_TIMEOUT": "4s"},
			want: with(func(c *Config) {
				c.DBTimeout, c.ReadHeaderTimeout, c.ReadTimeout = 1500*time.Millisecond, 3*time.Second, 4*time.Second
			})},
		{name: "TimeoutsFlags", args: []string{"-db-timeout", "2s", "-read-header-timeout", "1s", "-read-timeout", "30s"},
			want: with(func(c *Config) {
				c.DBTimeout, c.ReadHeaderTimeout, c.ReadTimeout = 2*time.Second, time.Second, 30*time.Second
			})},
		{name: "ErrDBTimeoutZero", env: map[string]string{"PARLEY_DB_TIMEOUT": "0s"}, wantErr: []string{"PARLEY_DB_TIMEOUT", "positive"}},
		{name: "ErrBadReadTimeout", env: map[string]string{"PARLEY_READ_TIMEOUT": "ten"}, wantErr: []string{"PARLEY_READ_TIMEOUT", "ten"}},
		{name: "ErrReadHeaderTimeoutNegative", env: map[string]string{"PARLEY_READ_HEADER_TIMEOUT": "-1s"}, wantErr: []string{"PARLEY_READ_HEADER_TIMEOUT", "positive"}},
		{name: "LimitsEnv", env: map[string]string{
			"PARLEY_POST_RATE": "2.5", "PARLEY_POST_BURST": "5", "PARLEY_LOGIN_FAILURES": "3", "PARLEY_LOGIN_WINDOW": "1m",
			"PARLEY_LOGIN_FAILURES_PER_USER": "0", "PARLEY_STREAMS_PER_USER": "4", "PARLEY_MAX_STREAMS": "100",
			"PARLEY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7 ,::1", "PARLEY_TCP_USER_TIMEOUT": "5s",
		}, want: with(func(c *Config) {
			c.Limits = LimitsConfig{PostRate: 2.5, PostBurst: 5, LoginFailures: 3, LoginWindow: time.Minute, StreamsPerUser: 4, MaxStreams: 100,
				TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")},
				TCPUserTimeout: 5 * time.Second}
		})},
		{name: "LimitsFlagsWin", args: []string{"-post-rate", "0", "-max-streams", "0"}, env: map[string]string{"PARLEY_POST_RATE": "1", "PARLEY_MAX_STREAMS": "5"},
			want: with(func(c *Config) { c.Limits.PostRate, c.Limits.MaxStreams = 0, 0 })},
		{name: "FlagsWinOverEnv",
			args: []string{"-addr=:2", "-access-ttl=2m", "--heartbeat=4s", "-jwt-secret", testSecret},
			env:  map[string]string{"PARLEY_ADDR": ":1", "PARLEY_ACCESS_TTL": "1m", "PARLEY_HEARTBEAT": "1s", "PARLEY_JWT_SECRET": "short", "PARLEY_DATABASE_URL": testURL},
			want: with(func(c *Config) {
				c.Addr, c.AccessTTL, c.Heartbeat, c.JWTSecret, c.DatabaseURL = ":2", 2*time.Minute, 4*time.Second, testSecret, testURL
			})},
		{name: "SecretWithURL", env: map[string]string{"PARLEY_DATABASE_URL": testURL, "PARLEY_JWT_SECRET": testSecret},
			want: with(func(c *Config) { c.DatabaseURL, c.JWTSecret = testURL, testSecret })},
		{name: "SecretIsRawBytes", env: map[string]string{"PARLEY_JWT_SECRET": strings.Repeat("é", 16)}, // 32 bytes, 16 characters
			want: with(func(c *Config) { c.JWTSecret = strings.Repeat("é", 16) })},
		{name: "MigrateNeedsNoSecret", migrate: true, env: map[string]string{"PARLEY_DATABASE_URL": testURL},
			want: with(func(c *Config) { c.DatabaseURL = testURL })},

		{name: "ErrSecretMissingWithURL", env: map[string]string{"PARLEY_DATABASE_URL": testURL},
			wantErr: []string{"PARLEY_JWT_SECRET", "required"}},
		{name: "ErrSecretShortWithURL", env: map[string]string{"PARLEY_DATABASE_URL": testURL, "PARLEY_JWT_SECRET": testSecret[:31]},
			wantErr: []string{"PARLEY_JWT_SECRET", "32 bytes"}},
		{name: "ErrSecretShortFlagWithURL", args: []string{"-jwt-secret", "hunter2"}, env: map[string]string{"PARLEY_DATABASE_URL": testURL},
			wantErr: []string{"PARLEY_JWT_SECRET", "32 bytes"}},
		{name: "ErrSecretShortWithoutURL", env: map[string]string{"PARLEY_JWT_SECRET": "hunter2"},
			wantErr: []string{"PARLEY_JWT_SECRET", "32 bytes"}},
		{name: "ErrBadAccessTTL", env: map[string]string{"PARLEY_ACCESS_TTL": "15 minutes"}, wantErr: []string{"PARLEY_ACCESS_TTL", "15 minutes"}},
		{name: "ErrBadRefreshTTL", env: map[string]string{"PARLEY_REFRESH_TTL": "30d"}, wantErr: []string{"PARLEY_REFRESH_TTL", "30d"}},
		{name: "ErrBadHeartbeat", env: map[string]string{"PARLEY_HEARTBEAT": "15"}, wantErr: []string{"PARLEY_HEARTBEAT"}},
		{name: "ErrBadDurationFlag", args: []string{"-access-ttl", "soon"}, wantErr: []string{"access-ttl"}},
		{name: "ErrZeroAccessTTL", env: map[string]string{"PARLEY_ACCESS_TTL": "0s"}, wantErr: []string{"PARLEY_ACCESS_TTL"}},
		{name: "ErrNegativeRefreshTTL", env: map[string]string{"PARLEY_REFRESH_TTL": "-1h"}, wantErr: []string{"PARLEY_REFRESH_TTL"}},
		{name: "ErrHeartbeatTooLong", env: map[string]string{"PARLEY_HEARTBEAT": "1h"}, wantErr: []string{"PARLEY_HEARTBEAT"}},
		{name: "PresenceEnv", env: map[string]string{"PARLEY_PRESENCE_TIMEOUT": "2s", "PARLEY_PRESENCE_GRACE": "500ms", "PARLEY_SIGNAL_INTERVAL": "50ms"},
			want: with(func(c *Config) {
				c.PresenceTimeout, c.PresenceGrace, c.SignalInterval = 2*time.Second, 500*time.Millisecond, 50*time.Millisecond
			})},
		{name: "ErrPresenceTimeoutShort", env: map[string]string{"PARLEY_PRESENCE_TIMEOUT": "100ms"}, wantErr: []string{"PARLEY_PRESENCE_TIMEOUT"}},
		{name: "ErrPresenceGraceZero", env: map[string]string{"PARLEY_PRESENCE_GRACE": "0s"}, wantErr: []string{"PARLEY_PRESENCE_GRACE"}},
		{name: "ErrSignalIntervalLong", env: map[string]string{"PARLEY_SIGNAL_INTERVAL": "2s"}, wantErr: []string{"PARLEY_SIGNAL_INTERVAL"}},
		{name: "ErrStreamTicketTTLZero", env: map[string]string{"PARLEY_STREAM_TICKET_TTL": "0s"}, wantErr: []string{"PARLEY_STREAM_TICKET_TTL"}},
		{name: "TLSEnv", env: map[string]string{"PARLEY_TLS_CERT_FILE": "/etc/parley/tls.crt", "PARLEY_TLS_KEY_FILE": "/etc/parley/tls.key"},
			want: with(func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "/etc/parley/tls.crt", "/etc/parley/tls.key" })},
		{name: "TLSFlags", args: []string{"-tls-cert-file", "a.crt", "-tls-key-file", "a.key"},
			want: with(func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "a.crt", "a.key" })},
		{name: "ErrTLSCertWithoutKey", env: map[string]string{"PARLEY_TLS_CERT_FILE": "a.crt"}, wantErr: []string{"PARLEY_TLS_CERT_FILE", "PARLEY_TLS_KEY_FILE", "together"}},
		{name: "ErrTLSKeyWithoutCert", args: []string{"-tls-key-file", "a.key"}, wantErr: []string{"PARLEY_TLS_CERT_FILE", "together"}},
		{name: "ErrEmptyAddr", args: []string{"-addr="}, wantErr: []string{"PARLEY_ADDR"}},
		{name: "ErrEmptyDataDirWithoutURL", args: []string{"-data-dir="}, wantErr: []string{"PARLEY_DATA_DIR"}},
		{name: "ErrEmptyIssuer", args: []string{"-jwt-issuer="}, wantErr: []string{"PARLEY_JWT_ISSUER"}},
		{name: "ErrEmptyAudience", args: []string{"-jwt-audience="}, wantErr: []string{"PARLEY_JWT_AUDIENCE"}},
		{name: "ErrBadPostRate", env: map[string]string{"PARLEY_POST_RATE": "ten"}, wantErr: []string{"PARLEY_POST_RATE", "ten"}},
		{name: "ErrNegativePostRate", env: map[string]string{"PARLEY_POST_RATE": "-1"}, wantErr: []string{"PARLEY_POST_RATE"}},
		{name: "ErrZeroBurst", env: map[string]string{"PARLEY_POST_BURST": "0"}, wantErr: []string{"PARLEY_POST_BURST"}},
		{name: "ErrBadLoginFailures", env: map[string]string{"PARLEY_LOGIN_FAILURES": "1.5"}, wantErr: []string{"PARLEY_LOGIN_FAILURES", "1.5"}},
		{name: "ErrNegativeStreams", env: map[string]string{"PARLEY_STREAMS_PER_USER": "-1"}, wantErr: []string{"PARLEY_STREAMS_PER_USER"}},
		{name: "ErrShortLoginWindow", env: map[string]string{"PARLEY_LOGIN_WINDOW": "10ms"}, wantErr: []string{"PARLEY_LOGIN_WINDOW"}},
		{name: "ErrBadLoginWindow", env: map[string]string{"PARLEY_LOGIN_WINDOW": "10"}, wantErr: []string{"PARLEY_LOGIN_WINDOW"}},
		{name: "ErrMaxStreamsOverFileLimit", env: map[string]string{"PARLEY_MAX_STREAMS": "2000000000"}, wantErr: []string{"PARLEY_MAX_STREAMS", "open-file limit"}},
		{name: "ErrBadTrustedProxy", env: map[string]string{"PARLEY_TRUSTED_PROXIES": "10.0.0.0/8,nginx"}, wantErr: []string{"PARLEY_TRUSTED_PROXIES", "nginx"}},
		{name: "ErrNegativeTCPUserTimeout", env: map[string]string{"PARLEY_TCP_USER_TIMEOUT": "-1s"}, wantErr: []string{"PARLEY_TCP_USER_TIMEOUT"}},
		{name: "ErrUnknownFlag", args: []string{"-port", "8080"}, wantErr: []string{"-port"}},
		{name: "ErrUnexpectedArgument", args: []string{"now"}, wantErr: []string{"unexpected arguments", "now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c, err := parseConfig("serve", tt.args, envFunc(tt.env), &stderr)
			if err == nil {
				err = c.validate(!tt.migrate)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("config %+v accepted, want an error naming %q", c, tt.wantErr)
				}
				msg := err.Error() + stderr.String()
				for _, w := range tt.wantErr {
					if !strings.Contains(msg, w) {
						t.Fatalf("error %q does not name %q", msg, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, want config %+v", err, tt.want)
			}
			if !reflect.DeepEqual(c, tt.want) {
				t.Fatalf("config\n %+v\nwant\n %+v", c, tt.want)
			}
		})
	}
}

// TestRun covers the commands that need no database: each answers with
// its exit code and output, and a command that cannot run fails before it
// touches the data dir.
func TestRun(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "NoArgumentsPrintsHelp", wantCode: 0, wantStdout: "Usage:"},
		{name: "Help", args: []string{"help"}, wantCode: 0, wantStdout: "parley migrate up|down|status"},
		{name: "HelpFlag", args: []string{"-h"}, wantCode: 0, wantStdout: "parley serve"},
		{name: "ServeHelpFlag", args: []string{"serve", "-h"}, wantCode: 0, wantStderr: "PARLEY_JWT_SECRET"},
		{name: "OpenAPI", args: []string{"openapi"}, wantCode: 0, wantStdout: "openapi: 3.1"},
		{name: "ErrUnknownCommand", args: []string{"start"}, wantCode: 2, wantStderr: `unknown command "start"`},
		{name: "ErrServeWithoutSecret", args: []string{"serve"}, env: map[string]string{"PARLEY_DATABASE_URL": testURL},
			wantCode: 1, wantStderr: "PARLEY_JWT_SECRET"},
		{name: "ErrServeBadDuration", args: []string{"serve"}, env: map[string]string{"PARLEY_DATA_DIR": dataDir, "PARLEY_REFRESH_TTL": "forever"},
			wantCode: 1, wantStderr: "PARLEY_REFRESH_TTL"},
		{name: "ErrMigrateWithoutAction", args: []string{"migrate"}, env: map[string]string{"PARLEY_DATA_DIR": dataDir},
			wantCode: 1, wantStderr: "up, down or status"},
		{name: "ErrMigrateUnknownAction", args: []string{"migrate", "sideways"}, env: map[string]string{"PARLEY_DATA_DIR": dataDir},
			wantCode: 1, wantStderr: `"sideways"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, envFunc(tt.env), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("stdout %q, want %q in it; stderr %q, want %q in it", &stdout, tt.wantStdout, &stderr, tt.wantStderr)
			}
			if _, err := os.Stat(dataDir); err == nil {
				t.Fatalf("%v created the data dir", tt.args)
			}
		})
	}
}

// TestHelpHidesSecrets: -h lists flag defaults, which come from the
// environment; the JWT secret and database URL must not appear there.
func TestHelpHidesSecrets(t *testing.T) {
	env := envFunc(map[string]string{
		"PARLEY_JWT_SECRET":   "a-secret-that-must-not-be-printed-0123456789",
		"PARLEY_DATABASE_URL": "postgres://parley:hunter2@db/parley",
	})
	var out strings.Builder
	if code := run(t.Context(), []string{"serve", "-h"}, env, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, s := range []string{"a-secret-that-must-not-be-printed", "hunter2"} {
		if strings.Contains(out.String(), s) {
			t.Fatalf("help printed %q:\n%s", s, out.String())
		}
	}
	cfg, err := parseConfig("serve", nil, env, &out)
	if err != nil || cfg.JWTSecret != "a-secret-that-must-not-be-printed-0123456789" || cfg.DatabaseURL != "postgres://parley:hunter2@db/parley" {
		t.Fatalf("secrets not read from the environment: %+v %v", cfg, err)
	}
}

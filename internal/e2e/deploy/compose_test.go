package deploy

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of `docker-compose config` output the tests read.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Ports   []string `yaml:"ports"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// MustCompose runs docker-compose (Debian's 1.29 in CI) on the repository's
// docker-compose.yml with env added to an environment free of PARLEY_*
// settings, failing the test when docker-compose is not installed.
func MustCompose(tb testing.TB, env []string, args ...string) []byte {
	tb.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		tb.Fatal("docker-compose is not installed: this test validates docker-compose.yml with it " +
			"(apt-get install docker-compose; .ci/run installs it)")
	}
	cmd := exec.Command(bin, append([]string{"-f", repoFile("docker-compose.yml")}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		tb.Fatalf("docker-compose %v: %v\n%s", args, err, stderr)
	}
	return out
}

// MustComposeConfig is the resolved compose file.
func MustComposeConfig(tb testing.TB, env ...string) composeFile {
	tb.Helper()
	var f composeFile
	if err := yaml.Unmarshal(MustCompose(tb, env, "config"), &f); err != nil {
		tb.Fatalf("parse docker-compose config: %v", err)
	}
	return f
}

// TestCompose: docker-compose.yml validates, runs Postgres, two replicas
// sharing database and secret, and nginx in front on localhost:8080.
func TestCompose(t *testing.T) {
	t.Parallel()
	MustCompose(t, nil, "config", "-q")
	f := MustComposeConfig(t)
	var names []string
	for name := range f.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"nginx", "parley-a", "parley-b", "postgres"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}

	pg := f.Services["postgres"]
	if !slices.Contains(pg.Healthcheck.Test, "pg_isready") || len(pg.Volumes) == 0 || len(f.Volumes) == 0 {
		t.Fatalf("postgres %+v: want a pg_isready health check and a named volume", pg)
	}
	a, b := f.Services["parley-a"], f.Services["parley-b"]
	for _, name := range []string{"parley-a", "parley-b"} {
		svc := f.Services[name]
		if svc.DependsOn["postgres"].Condition != "service_healthy" {
			t.Fatalf("%s depends on %+v, want postgres healthy", name, svc.DependsOn)
		}
		if !slices.Contains(svc.Healthcheck.Test, "healthcheck") || !strings.HasSuffix(svc.Healthcheck.Test[len(svc.Healthcheck.Test)-1], "/readyz") {
			t.Fatalf("%s health check %v, want parley healthcheck .../readyz", name, svc.Healthcheck.Test)
		}
	}
	if !maps.Equal(a.Environment, b.Environment) {
		t.Fatalf("replicas differ:\n%v\n%v", a.Environment, b.Environment)
	}
	if url := a.Environment["PARLEY_DATABASE_URL"]; !strings.Contains(url, "@postgres:5432/") {
		t.Fatalf("PARLEY_DATABASE_URL %q, want the postgres service", url)
	}
	if s := a.Environment["PARLEY_JWT_SECRET"]; len(s) < 32 || !strings.Contains(s, "INSECURE") {
		t.Fatalf("default PARLEY_JWT_SECRET %q: want a loud development default of at least 32 bytes", s)
	}
	const mine = "0123456789abcdef0123456789abcdef-mine"
	set := MustComposeConfig(t, "PARLEY_JWT_SECRET="+mine)
	if set.Services["parley-a"].Environment["PARLEY_JWT_SECRET"] != mine || set.Services["parley-b"].Environment["PARLEY_JWT_SECRET"] != mine {
		t.Fatalf("PARLEY_JWT_SECRET from the environment not used")
	}

	ng := f.Services["nginx"]
	if !slices.Contains(ng.Ports, "127.0.0.1:8080:80/tcp") {
		t.Fatalf("nginx ports %v, want localhost:8080", ng.Ports)
	}
	for _, conf := range []string{"deploy/nginx/nginx.conf", "deploy/nginx/parley.conf"} {
		if !slices.ContainsFunc(ng.Volumes, func(v string) bool { return strings.Contains(v, conf+":") }) {
			t.Fatalf("nginx volumes %v do not mount %s", ng.Volumes, conf)
		}
	}
	for _, dep := range []string{"parley-a", "parley-b"} {
		if ng.DependsOn[dep].Condition != "service_healthy" {
			t.Fatalf("nginx depends on %+v, want %s healthy (nginx resolves upstream names at start)", ng.DependsOn, dep)
		}
	}
}

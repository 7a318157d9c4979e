// Package typescript builds, type-checks, lints and tests the TypeScript
// client in api/typescript against a real server: its node tests
// (node --test) reach the replica started here through PARLEY_URL.
package typescript

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// accessTTL is short so the node tests see tokens expire (refresh, reauth).
const accessTTL = 3 * time.Second

// pkgDir is api/typescript.
func pkgDir(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "api", "typescript")
}

// npm runs npm in the package with env added, failing the test with its
// output.
func npm(tb testing.TB, dir string, env []string, args ...string) {
	tb.Helper()
	cmd := exec.Command("npm", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("npm %v: %v\n%s", args, err, out)
	}
	tb.Logf("npm %v: %s\n%s", args, time.Since(start).Round(time.Millisecond), out)
}

// TestTypeScriptClient: the README shows the example its tests run; the
// package installs from its lock file (unless
// installed already, as .ci/run does), type-checks in strict mode, passes
// its no-any lint, and its tests pass against a real replica.
func TestTypeScriptClient(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatal("the TypeScript client's tests need Node.js 20.19+ and npm (.ci/run installs them)")
	}
	dir := pkgDir(t)
	t.Run("ExampleInREADME", func(t *testing.T) {
		src, err := os.ReadFile(filepath.Join(dir, "examples", "quickstart.ts"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(src), "\n"), "\n")
		for len(lines) > 0 && strings.HasPrefix(lines[0], "//") {
			lines = lines[1:] // the file's own comment
		}
		readme, err := os.ReadFile(filepath.Join(dir, "..", "..", "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) == 0 || !strings.Contains(string(readme), "```ts\n"+strings.Join(lines, "\n")+"\n```") {
			t.Fatal("README.md does not show api/typescript/examples/quickstart.ts as it is")
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err != nil {
		npm(t, dir, nil, "ci", "--no-audit", "--no-fund")
	}
	npm(t, dir, nil, "run", "build")
	npm(t, dir, nil, "run", "lint")

	r := e2e.NewCluster(t, "PARLEY_ACCESS_TTL="+accessTTL.String()).MustStart(t)
	npm(t, dir, []string{
		"PARLEY_URL=" + r.URL,
		"PARLEY_ACCESS_TTL_MS=" + strconv.FormatInt(accessTTL.Milliseconds(), 10),
	}, "test")
}

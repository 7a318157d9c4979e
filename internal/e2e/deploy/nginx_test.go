// Package deploy proves the deployment files natively, with no container
// engine: deploy/nginx/parley.conf runs in a real nginx in front of two real
// replicas, and docker-compose.yml validates with docker-compose.
package deploy

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// repoFile is the path of a file of the repository.
func repoFile(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", name)
}

// Nginx is a running nginx in front of test replicas.
type Nginx struct {
	URL string
}

// MustNginxBinary finds Debian's nginx, failing the test (never skipping
// it) when it is not installed.
func MustNginxBinary(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	tb.Fatal("nginx is not installed: this test runs deploy/nginx/parley.conf in a real nginx " +
		"(apt-get install nginx; .ci/run installs it)")
	return ""
}

// substitution replaces what re matches in a config file; re must match
// exactly n times (1 when n is 0), so a reshaped file fails the test
// instead of running unchanged.
type substitution struct {
	re   *regexp.Regexp
	with string
	n    int
}

// mustSubstitute reads the repository's file name and applies subs.
func mustSubstitute(tb testing.TB, name string, subs ...substitution) string {
	tb.Helper()
	raw, err := os.ReadFile(repoFile(name))
	if err != nil {
		tb.Fatal(err)
	}
	conf := string(raw)
	for _, sub := range subs {
		want := max(sub.n, 1)
		if n := len(sub.re.FindAllStringIndex(conf, -1)); n != want {
			tb.Fatalf("%s: %d matches of %s, want %d", name, n, sub.re, want)
		}
		conf = sub.re.ReplaceAllString(conf, sub.with)
	}
	return conf
}

// upstreamLine matches the upstream server line of a compose service.
func upstreamLine(service string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^(\s*server\s+)` + service + `:8080(\s|;)`)
}

// parleyConf is deploy/nginx/parley.conf with the compose service names
// replaced by the replicas' addresses a and b, and its listen address by
// listen. Everything else (the proxy settings under test) is the file as
// shipped: nginx cannot be given addresses from outside its config, and a
// file split up only for the test would be harder for operators to read.
func parleyConf(tb testing.TB, listen, a, b string) string {
	tb.Helper()
	return mustSubstitute(tb, "deploy/nginx/parley.conf",
		substitution{re: upstreamLine("parley-a"), with: "${1}" + a + "${2}"},
		substitution{re: upstreamLine("parley-b"), with: "${1}" + b + "${2}"},
		substitution{re: regexp.MustCompile(`(?m)^(\s*listen\s+)80;`), with: "${1}" + listen + ";"},
	)
}

// userLine runs nginx's workers as the test's user: as root they would
// run as nobody, who cannot write the test's folder.
func userLine(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		return "" // nginx can switch users only as root
	}
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("user %s %s;", u.Username, g.Name)
}

// tempPaths keeps everything nginx writes under dir.
func tempPaths(dir string) string {
	var b strings.Builder
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "    %s_temp_path %s/%s;\n", p, dir, p)
	}
	return b.String()
}

// mainConf is the small main config that includes parley.conf, with
// everything nginx writes under dir.
func mainConf(tb testing.TB, dir string) string {
	tb.Helper()
	return fmt.Sprintf(`# Written by internal/e2e/deploy: runs deploy/nginx/parley.conf.
%[2]s
daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 1024; }
http {
    access_log %[1]s/access.log;
%[3]s    include %[1]s/parley.conf;
}
`, dir, userLine(tb), tempPaths(dir))
}

// nginxArgs are the command-line arguments that run config conf with
// prefix and error log in dir.
func nginxArgs(dir, conf string) []string {
	return []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf}
}

// mustTest runs nginx -t with args.
func mustTest(tb testing.TB, bin string, args ...string) {
	tb.Helper()
	out, err := exec.Command(bin, append(args, "-t")...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("test is successful")) {
		tb.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// MustNginx checks the config with nginx -t, then runs nginx in front of
// replicas a and b until the test ends.
func MustNginx(tb testing.TB, a, b *e2e.Replica) *Nginx {
	tb.Helper()
	bin := MustNginxBinary(tb)
	dir := tb.TempDir()
	addr := e2e.FreeAddr(tb)
	conf := parleyConf(tb, addr, strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "parley.conf"), []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	main := filepath.Join(dir, "test.conf")
	if err := os.WriteFile(main, []byte(mainConf(tb, dir)), 0o644); err != nil {
		tb.Fatal(err)
	}
	args := nginxArgs(dir, main)
	mustTest(tb, bin, args...)
	cmd := exec.Command(bin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		// The master and its worker share the process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if tb.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			tb.Logf("nginx output:\n%s\nerror.log:\n%s", log.String(), errLog)
		}
	})
	// Wait until nginx accepts connections (or exits).
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return &Nginx{URL: "http://" + addr}
		}
		select {
		case err := <-exited:
			exited <- err
			tb.Fatalf("nginx exited: %v", err)
		case <-deadline:
			tb.Fatalf("nginx not listening on %s after 30s", addr)
		case <-tick.C:
		}
	}
}

// mustPost posts body through c and returns the message and the moment
// its post returned.
func mustPost(tb testing.TB, c *e2e.Client, roomID, body string) (chat.Message, time.Time) {
	tb.Helper()
	m := c.MustPost(tb, roomID, body)
	return m, time.Now()
}

// mustDeliverWithin waits for the event of m on s (a room's or the user's
// stream) and fails unless it arrives within a second of posted.
func mustDeliverWithin(tb testing.TB, s *e2e.Stream, m chat.Message, posted time.Time) e2e.Frame {
	tb.Helper()
	f := s.Next(tb, time.Until(posted.Add(time.Second)))
	mustBeMessage(tb, f, m)
	return f
}

// mustBeMessage fails unless f is the event of m.
func mustBeMessage(tb testing.TB, f e2e.Frame, m chat.Message) {
	tb.Helper()
	if f.Type != "message" || f.RawID == "" || f.Seq() != m.Seq || !strings.Contains(f.Data, m.ID) {
		tb.Fatalf("frame %+v, want message %s (seq %d)", f, m.ID, m.Seq)
	}
}

// streams are a room's stream and the user's stream.
var streams = []struct {
	name   string
	roomID func(chat.Room) string
}{
	{"Room", func(r chat.Room) string { return r.ID }},
	{"User", func(chat.Room) string { return "" }},
}

// TestNginx runs deploy/nginx/parley.conf in front of two replicas: events
// posted through either replica reach a room stream and a user stream
// through nginx within a second (a buffering proxy would sit on them),
// Last-Event-ID resumes both through it, encoded paths pass untouched, and
// with one replica gone the other serves everything.
func TestNginx(t *testing.T) {
	cl := e2e.NewCluster(t)
	a, b := cl.MustStart(t), cl.MustStart(t)
	ng := MustNginx(t, a, b)
	alice := e2e.MustRegister(t, ng.URL, "alice")
	room := alice.MustCreateRoom(t, "deploy", chat.Public)
	replicas := []*e2e.Replica{a, b}
	last := make([]string, len(streams)) // the last id each stream sent

	t.Run("EventsWithinASecond", func(t *testing.T) {
		open := make([]*e2e.Stream, len(streams))
		for i, st := range streams {
			s := alice.OpenStream(t, st.roomID(room), "", nil) // closed when the subtest ends
			if enc := s.Resp.Header.Get("Content-Encoding"); enc != "" || s.Resp.Uncompressed {
				t.Fatalf("%s stream through nginx is compressed (%q): gzip buffers events", st.name, enc)
			}
			s.UntilReady(t, 10*time.Second)
			open[i] = s
		}
		for n := range 6 {
			r := replicas[n%2]
			m, posted := mustPost(t, alice.As(r.URL), room.ID, fmt.Sprintf("small %d via %s", n, r.URL))
			for i, s := range open {
				last[i] = mustDeliverWithin(t, s, m, posted).RawID
			}
		}
	})

	t.Run("ResumeWithLastEventID", func(t *testing.T) {
		var missed []chat.Message
		for _, r := range replicas {
			missed = append(missed, alice.As(r.URL).MustPost(t, room.ID, "while away via "+r.URL))
		}
		for i, st := range streams {
			s := alice.OpenStream(t, st.roomID(room), "", http.Header{"Last-Event-ID": {last[i]}})
			got := s.UntilReady(t, 10*time.Second)
			s.Close()
			if len(got) != len(missed) {
				t.Fatalf("%s stream replayed %d frames %+v, want the %d missed", st.name, len(got), got, len(missed))
			}
			for j, f := range got {
				mustBeMessage(t, f, missed[j])
			}
		}
	})

	t.Run("EncodedPathUntouched", func(t *testing.T) {
		// %2F stays one segment only if nginx passes the path as sent.
		const path = "/v1/users/by-name/ali%2Fce"
		direct, proxied := alice.As(a.URL).Do(t, http.MethodGet, path, nil), alice.Do(t, http.MethodGet, path, nil)
		if direct.Status != proxied.Status || !bytes.Equal(direct.Body, proxied.Body) {
			t.Fatalf("through nginx %d %s, directly %d %s", proxied.Status, proxied.Body, direct.Status, direct.Body)
		}
	})

	t.Run("OneReplicaDown", func(t *testing.T) {
		a.Kill()
		// Round robin sends every other new request to the dead replica:
		// nginx must move each one on to b.
		var open []*e2e.Stream
		for n := range 4 {
			s := alice.OpenStream(t, streams[n%2].roomID(room), "", nil)
			s.UntilReady(t, 10*time.Second)
			open = append(open, s)
		}
		for i := range 4 {
			if resp := alice.Do(t, http.MethodGet, "/v1/me", nil); resp.Status != http.StatusOK {
				t.Fatalf("GET /v1/me through nginx with a down: %d %s", resp.Status, resp.Body)
			}
			m, posted := mustPost(t, alice, room.ID, fmt.Sprintf("with a down %d", i))
			for _, s := range open {
				mustDeliverWithin(t, s, m, posted)
			}
		}
		for _, s := range open {
			s.Close()
		}
	})
}

// TestNginxMainConfig: deploy/nginx/nginx.conf, the main config of the
// compose setup, passes nginx -t with parley.conf included; the nginx
// image's paths point into the test's folder.
func TestNginxMainConfig(t *testing.T) {
	t.Parallel()
	bin := MustNginxBinary(t)
	dir := t.TempDir()
	files := map[string]string{
		"parley.conf": parleyConf(t, e2e.FreeAddr(t), e2e.FreeAddr(t), e2e.FreeAddr(t)),
		"mime.types":  "types { application/json json; }\n",
		"nginx.conf": mustSubstitute(t, "deploy/nginx/nginx.conf",
			substitution{re: regexp.MustCompile(`include /etc/nginx/`), with: "include " + dir + "/", n: 2},
			substitution{re: regexp.MustCompile(`/var/log/nginx/`), with: dir + "/", n: 2},
			substitution{re: regexp.MustCompile(`(?m)^http \{\n`), with: "http {\n" + tempPaths(dir)},
		),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := nginxArgs(dir, filepath.Join(dir, "nginx.conf"))
	mustTest(t, bin, append(args, "-g", fmt.Sprintf("pid %s/nginx.pid; %s", dir, userLine(t)))...)
}

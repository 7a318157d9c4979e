// Package https tests Parley serving HTTPS: HTTP/2 with a certificate made
// at test time, many streams over one connection, idle streams outliving
// the stream write timeout, and parley healthcheck against it.
package https

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// MustCert writes a self-signed certificate for 127.0.0.1 and localhost
// and its key into a temporary folder, and returns their paths and a pool
// that trusts the certificate.
func MustCert(tb testing.TB) (certFile, keyFile string, roots *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "parley test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// countingClient is an HTTP client trusting roots that tries HTTP/2 (a
// Transport with its own TLSClientConfig does so only with
// ForceAttemptHTTP2) and counts the TCP connections it dials.
func countingClient(tb testing.TB, roots *x509.CertPool, dials *atomic.Int64) *http.Client {
	var d net.Dialer
	tr := &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// rawStream is a stream read line by line, comments included (the SSE
// parser in e2e drops them).
type rawStream struct {
	resp  *http.Response
	lines chan string
	err   error // why lines closed, once it is closed
}

// MustOpenRaw opens a room's stream with c and reads its lines until the
// test ends.
func MustOpenRaw(tb testing.TB, c *e2e.Client, roomID string) *rawStream {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.HTTP.Do(c.StreamRequest(ctx, roomID, ""))
	if err != nil {
		cancel()
		tb.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		tb.Fatalf("open stream: %s", resp.Status)
	}
	s := &rawStream{resp: resp, lines: make(chan string, 1000)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		s.err = sc.Err()
		if s.err == nil {
			s.err = io.EOF
		}
	}()
	tb.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return s
}

// awaitLine waits up to d for a line for which match is true.
func (s *rawStream) awaitLine(d time.Duration, match func(string) bool) (string, bool) {
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return "stream ended: " + s.err.Error(), false
			}
			if match(l) {
				return l, true
			}
		case <-timeout:
			return "nothing within " + d.String(), false
		}
	}
}

// heartbeat is longer than the stream write timeout (5 s, writeTimeout in
// internal/httpapi/stream.go), so a stream sits idle past it before its
// first ping: over HTTP/2 a write deadline left set would reset it then.
const heartbeat = 6 * time.Second

// TestHTTP2: over HTTPS Parley speaks HTTP/2; 20 streams share one
// connection with the calls that feed them, stay open while idle past the
// write timeout, and all deliver.
func TestHTTP2(t *testing.T) {
	certFile, keyFile, roots := MustCert(t)
	var dials atomic.Int64
	hc := countingClient(t, roots, &dials)
	cl := e2e.NewCluster(t)
	var readyDials atomic.Int64
	r := e2e.MustStartCmdClient(t, cl.Command(
		"PARLEY_TLS_CERT_FILE="+certFile, "PARLEY_TLS_KEY_FILE="+keyFile, "PARLEY_HEARTBEAT="+heartbeat.String(),
	), countingClient(t, roots, &readyDials))
	if !strings.HasPrefix(r.URL, "https://") {
		t.Fatalf("replica URL %s, want https", r.URL)
	}

	// Registering dials the one connection everything after shares.
	alice := e2e.MustRegisterClient(t, hc, r.URL, "alice")
	room := alice.MustCreateRoom(t, "h2", chat.Public)
	const n = 20
	streams := make([]*rawStream, n)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := MustOpenRaw(t, alice, room.ID)
			streams[i] = s
			if s.resp.ProtoMajor != 2 {
				errs <- "stream over " + s.resp.Proto + ", want HTTP/2"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	// Each stream: ready, then a ping heartbeat later (idle past the write
	// timeout), then the message posted after that.
	await := func(what string, match func(string) bool, d time.Duration) {
		t.Helper()
		for i, s := range streams {
			if l, ok := s.awaitLine(d, match); !ok {
				t.Fatalf("stream %d: no %s: %s", i, what, l)
			}
		}
	}
	await("ready", func(l string) bool { return l == "event: ready" }, 30*time.Second)
	await("ping", func(l string) bool { return l == ": ping" }, heartbeat+20*time.Second)
	m := alice.MustPost(t, room.ID, "after the idle spell")
	await("message", func(l string) bool { return strings.HasPrefix(l, "data: ") && strings.Contains(l, m.ID) }, 20*time.Second)
	if got := dials.Load(); got != 1 {
		t.Fatalf("%d connections dialed for %d streams and their calls, want 1", got, n)
	}
}

// TestHealthcheck: parley healthcheck reaches an HTTPS replica with
// -insecure (its certificate is for the replica's public name, not for
// localhost) and refuses an unknown certificate without it.
func TestHealthcheck(t *testing.T) {
	certFile, keyFile, roots := MustCert(t)
	var dials atomic.Int64
	cl := e2e.NewCluster(t)
	r := e2e.MustStartCmdClient(t, cl.Command("PARLEY_TLS_CERT_FILE="+certFile, "PARLEY_TLS_KEY_FILE="+keyFile), countingClient(t, roots, &dials))
	for _, tt := range []struct {
		name       string
		args       []string
		wantCode   int
		wantOutput string
	}{
		// A generous -timeout: a race-built binary on a loaded box can take
		// seconds for a TLS handshake, which the 3 s default would turn
		// into a timeout instead of the answer under test.
		{"Insecure", []string{"-timeout", "30s", "-insecure", r.URL + "/readyz"}, 0, "200"},
		{"ErrUnknownCertificate", []string{"-timeout", "30s", r.URL + "/readyz"}, 1, "certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(e2e.Binary(), append([]string{"healthcheck"}, tt.args...)...)
			cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tt.wantCode || !strings.Contains(string(out), tt.wantOutput) {
				t.Fatalf("exit %d, output %q: want exit %d and %q", code, out, tt.wantCode, tt.wantOutput)
			}
		})
	}
}

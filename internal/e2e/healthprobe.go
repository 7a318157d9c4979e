package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

var probeBuild struct {
	once sync.Once
	path string
	err  error
}

// HealthProbe is a running healthprobe process (internal/e2e/healthprobe):
// a health check from a process of its own, whose timings are not those of
// a test process busy making load.
type HealthProbe struct {
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   bool
}

// StartHealthProbe builds healthprobe without -race (once per test
// process) and starts it against url: a GET every interval, each of which
// must answer 200 within timeout. Stop it with Stop; it is killed at the
// end of the test otherwise.
func StartHealthProbe(tb testing.TB, url string, interval, timeout time.Duration) *HealthProbe {
	tb.Helper()
	probeBuild.once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		probeBuild.path = binary + "-healthprobe"
		build := exec.Command("go", "build", "-o", probeBuild.path, "./internal/e2e/healthprobe")
		build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			probeBuild.err = fmt.Errorf("build healthprobe: %v\n%s", err, out)
		}
	})
	if probeBuild.err != nil {
		tb.Fatal(probeBuild.err)
	}
	p := &HealthProbe{cmd: exec.Command(probeBuild.path, "-interval", interval.String(), "-timeout", timeout.String(), url)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.stdin = stdin
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start healthprobe: %v", err)
	}
	tb.Cleanup(func() {
		if !p.done {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// Stop ends the probe and reports how many probes it made and the slowest
// answer; err is the first probe that failed or was too slow.
func (p *HealthProbe) Stop() (probes int, slowest time.Duration, err error) {
	_ = p.stdin.Close()
	waitErr := p.cmd.Wait()
	p.done = true
	var rep struct {
		Probes    int    `json:"probes"`
		SlowestNS int64  `json:"slowest_ns"`
		Error     string `json:"error"`
	}
	if jerr := json.Unmarshal(p.stdout.Bytes(), &rep); jerr != nil {
		return 0, 0, fmt.Errorf("healthprobe: %v (%v): %s%s", waitErr, jerr, p.stdout.Bytes(), p.stderr.Bytes())
	}
	if rep.Error != "" {
		err = fmt.Errorf("healthprobe: %s", rep.Error)
	} else if waitErr != nil {
		err = fmt.Errorf("healthprobe: %v: %s", waitErr, p.stderr.Bytes())
	}
	return rep.Probes, time.Duration(rep.SlowestNS), err
}

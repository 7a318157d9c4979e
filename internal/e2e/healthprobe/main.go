// Command healthprobe is an end-to-end tests' tool: a health check of its
// own process, as an orchestrator's would be. It GETs a URL every interval
// until its standard input closes, then prints how many probes it made and
// the slowest answer as JSON; it exits 1 if any probe failed or took longer
// than the timeout. A probe inside a test process would measure that
// process's scheduler too, busy with the load the test makes.
//
//	healthprobe -interval 100ms -timeout 2s http://127.0.0.1:8080/healthz
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

type report struct {
	Probes    int    `json:"probes"`
	SlowestNS int64  `json:"slowest_ns"`
	Error     string `json:"error,omitempty"`
}

func main() {
	interval := flag.Duration("interval", 100*time.Millisecond, "time between probes")
	timeout := flag.Duration("timeout", 2*time.Second, "a probe slower than this fails")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: healthprobe [-interval d] [-timeout d] URL")
		os.Exit(2)
	}
	url := flag.Arg(0)
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	hc := &http.Client{Timeout: *timeout}
	var rep report
	tick := time.NewTicker(*interval)
	defer tick.Stop()
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-tick.C:
		}
		if err := probe(hc, url, &rep); err != nil {
			rep.Error = err.Error()
			break
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(rep)
	if rep.Error != "" {
		os.Exit(1)
	}
}

func probe(hc *http.Client, url string, rep *report) error {
	t0 := time.Now()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("probe %d: %w", rep.Probes+1, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	rep.Probes++
	rep.SlowestNS = max(rep.SlowestNS, d.Nanoseconds())
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %d: status %d", rep.Probes, resp.StatusCode)
	}
	return nil
}

package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at link time: go build -ldflags "-X main.version=1.2.3".
// The Dockerfile stamps it from its VERSION build argument.
var version string

// buildVersion is the version stamped at link time, else the main module's
// version from the build information (a tag, or Go's pseudo-version from the
// VCS), else the VCS revision, else "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// printVersion runs "parley version".
func printVersion(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError("takes no arguments")
	}
	_, err := fmt.Fprintln(stdout, buildVersion())
	return err
}

package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDockerfileBuild runs the Dockerfile's build step natively (there is
// no container engine here): it yields a static binary that reports the
// version given as the VERSION build argument.
func TestDockerfileBuild(t *testing.T) {
	t.Parallel()
	dockerfile, err := os.ReadFile(repoFile("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	step := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*) -o /out/parley (\./cmd/parley)$`).FindSubmatch(dockerfile)
	if step == nil {
		t.Fatal("Dockerfile: no `RUN CGO_ENABLED=0 go build ... -o /out/parley ./cmd/parley` step")
	}
	bin := filepath.Join(t.TempDir(), "parley")
	build := exec.Command("sh", "-c", string(step[1])+` -o "$OUT" `+string(step[2]))
	build.Dir = repoFile(".")
	build.Env = append(os.Environ(), "VERSION=v1.2.3-docker", "OUT="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("binary is dynamically linked (%s): the distroless static image has no libc", p.Type)
		}
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || string(out) != "v1.2.3-docker\n" {
		t.Fatalf("version %q (%v), want the build argument v1.2.3-docker", out, err)
	}
}

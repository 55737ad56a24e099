package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/slotway/slotway"

// goList runs `go list` with args in the module and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go list needs the go command on PATH: %v", err)
	}
	cmd := exec.Command(gobin, append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestBinaryLinksNoTestCode: the shipped binary links neither the testing
// package nor a browser driver nor any of our test harnesses (packages
// named *test): they are for tests, and would grow the binary and its
// attack surface.
func TestBinaryLinksNoTestCode(t *testing.T) {
	deps := goList(t, "-deps", "./cmd/slotway")
	if len(deps) < 10 {
		t.Fatalf("go list -deps ./cmd/slotway listed %d packages: %q", len(deps), deps)
	}
	for _, p := range deps {
		base := p[strings.LastIndex(p, "/")+1:]
		std := !strings.Contains(strings.SplitN(p, "/", 2)[0], ".")
		switch {
		case p == "testing" || strings.HasPrefix(p, "testing/"),
			strings.Contains(p, "chromedp"),
			strings.HasSuffix(base, "test") && !(std && strings.HasPrefix(p, "internal/")):
			// (std's internal/synctest is the runtime's, imported by sync.)
			t.Errorf("the slotway binary links %s", p)
		}
	}
}

// TestImportDirections pins which parts may use which: the data plane
// (proxy) knows nothing of HA, scaling or the stats page; HA knows
// nothing of the data plane or the scaler; stats owns the types of its
// API and imports none of the parts it shows (the scaler uses its types);
// no library imports cmd.
func TestImportDirections(t *testing.T) {
	forbidden := map[string][]string{
		"proxy": {"ha", "scaler", "stats"},
		"ha":    {"proxy", "scaler"},
		"stats": {"proxy", "ha", "scaler"},
	}
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		rel, ok := strings.CutPrefix(pkg, module+"/")
		if !ok {
			continue
		}
		top := strings.SplitN(rel, "/", 2)[0]
		for _, d := range deps {
			drel, ok := strings.CutPrefix(d, module+"/")
			if !ok {
				continue
			}
			dtop := strings.SplitN(drel, "/", 2)[0]
			if dtop == "cmd" && top != "cmd" {
				t.Errorf("%s imports %s: no library imports cmd", rel, drel)
			}
			for _, f := range forbidden[top] {
				if dtop == f {
					t.Errorf("%s imports %s: %s must not depend on %s", rel, drel, top, f)
				}
			}
		}
	}
}

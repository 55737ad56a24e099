package deploytest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dfInstruction is one Dockerfile instruction, continuation lines joined.
type dfInstruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// dfStage is a FROM and the instructions up to the next FROM.
type dfStage struct {
	image, name string
	instrs      []dfInstruction
}

func (s dfStage) all(cmd string) []dfInstruction {
	var out []dfInstruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// parseDockerfile splits a Dockerfile into stages. It knows what the
// checks below need: comments, continuations, FROM image [AS name].
func parseDockerfile(t *testing.T, b []byte) []dfStage {
	t.Helper()
	var stages []dfStage
	var pending strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && pending.Len() == 0) {
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont)
			continue
		}
		pending.WriteString(line)
		full := strings.TrimSpace(pending.String())
		pending.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		in := dfInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := dfStage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			continue // a global ARG
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	if pending.Len() > 0 {
		t.Fatal("Dockerfile ends inside a continuation line")
	}
	return stages
}

// stageVars are the ARG defaults and ENV values of a stage, for expanding
// ${VAR} the way the builder would.
func stageVars(s dfStage) map[string]string {
	vars := map[string]string{}
	for _, in := range s.instrs {
		if in.cmd != "ARG" && in.cmd != "ENV" {
			continue
		}
		for _, kv := range strings.Fields(in.args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = strings.Trim(v, `"`)
			}
		}
	}
	return vars
}

// TestDockerfile checks the image's promises that can be checked without a
// Docker engine, and builds the binary with the Dockerfile's own go build
// line to prove it is statically linked.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, b)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if build.name == "" || !strings.HasPrefix(build.image, "golang:") {
		t.Errorf("first stage: want a named golang build stage, got FROM %s AS %q", build.image, build.name)
	}
	if strings.HasPrefix(final.image, "golang:") {
		t.Errorf("final stage is the Go toolchain image %s: it must be a runtime image", final.image)
	}

	// The build line: static, trimmed paths, the slotway command.
	var goBuild []string
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "go build") {
			w, err := shellWords(in.args)
			if err != nil {
				t.Fatalf("line %d: %v", in.line, err)
			}
			goBuild = w
		}
	}
	if goBuild == nil {
		t.Fatal("build stage: no RUN ... go build")
	}
	var env, args []string
	for i, w := range goBuild {
		if w == "go" {
			env, args = goBuild[:i], goBuild[i+1:]
			break
		}
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("go build runs without CGO_ENABLED=0 (env %q): the binary would link libc", env)
	}
	if len(args) == 0 || args[0] != "build" || !slices.Contains(args, "-trimpath") || args[len(args)-1] != "./cmd/slotway" {
		t.Errorf("want `go build -trimpath ... ./cmd/slotway`, got go %q", args)
	}
	outIdx := slices.Index(args, "-o")
	if outIdx < 0 || outIdx+1 >= len(args) {
		t.Fatalf("go build has no -o OUTPUT: %q", args)
	}
	builtAt := args[outIdx+1]

	// The final stage runs that binary, as a non-root user, with a check.
	var copied string
	for _, in := range final.all("COPY") {
		f := strings.Fields(in.args)
		if len(f) == 3 && f[0] == "--from="+build.name && f[1] == builtAt {
			copied = f[2]
		}
	}
	if copied == "" {
		t.Errorf("final stage: no COPY --from=%s %s", build.name, builtAt)
	}
	if ep := final.all("ENTRYPOINT"); len(ep) != 1 || !strings.Contains(ep[0].args, `"`+copied+`"`) {
		t.Errorf("final stage: want ENTRYPOINT [%q], got %v", copied, ep)
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Error("final stage: no USER (it would run as root)")
	} else if u, _, _ := strings.Cut(users[len(users)-1].args, ":"); u == "root" || u == "0" {
		t.Errorf("final stage: USER %s is root", users[len(users)-1].args)
	}
	hc := final.all("HEALTHCHECK")
	vars := stageVars(final)
	if len(hc) != 1 || strings.HasPrefix(strings.ToUpper(hc[0].args), "NONE") {
		t.Errorf("final stage: want one HEALTHCHECK, got %v", hc)
	} else if check := os.Expand(hc[0].args, func(k string) string { return vars[k] }); !strings.Contains(check, "/healthz") {
		t.Errorf("HEALTHCHECK does not ask /healthz: %s", check)
	}
	var exposed []string
	for _, in := range final.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.args)...)
	}
	for _, p := range []string{"7100/tcp", "8100/tcp", "7946/tcp", "7946/udp"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("final stage: EXPOSE lacks %s (got %q)", p, exposed)
		}
	}

	// Run the same build on this machine, into a temp dir.
	bvars := stageVars(build)
	bin := filepath.Join(t.TempDir(), "slotway")
	runArgs := slices.Clone(args)
	runArgs[outIdx+1] = bin
	for i := range runArgs {
		runArgs[i] = os.Expand(runArgs[i], func(k string) string { return bvars[k] })
	}
	cmd := exec.Command("go", runArgs...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(runArgs, " "), err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter (PT_INTERP): it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q (err %v): want none", libs, err)
	}
	// The -X version flag reached a real variable, and the binary runs.
	out, err := exec.Command(bin, "version").CombinedOutput()
	if want := "slotway " + bvars["VERSION"]; err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("%s version = %q, %v; want %q", bin, out, err, want)
	}
}

// TestShellWords pins the splitter the Dockerfile test relies on.
func TestShellWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`a  b`, []string{"a", "b"}},
		{`X=1 go build -ldflags "-s -w -X p.V=${V}" -o /o ./c`, []string{"X=1", "go", "build", "-ldflags", "-s -w -X p.V=${V}", "-o", "/o", "./c"}},
		{`'a b' c\ d "e\"f"`, []string{"a b", "c d", `e"f`}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := shellWords(tc.in)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("shellWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

package main

import (
	"strings"
	"testing"
)

// TestBadFlagsExit2: a bad flag is a usage error in every command (exit 2,
// printed once with the usage), and -h exits 0, as the help texts say.
func TestBadFlagsExit2(t *testing.T) {
	for _, cmd := range [][]string{{"run"}, {"demo"}, {"cluster"}, {"cluster", "create"}, {"check"}, {"bench"}} {
		name := strings.Join(cmd, " ")
		t.Run(name, func(t *testing.T) {
			var out, errb strings.Builder
			code := runMain(append(append([]string{}, cmd...), "-bogus"), &out, &errb)
			if code != 2 || strings.Count(errb.String(), "flag provided but not defined: -bogus") != 1 {
				t.Errorf("%s -bogus: exit %d, want 2; stderr:\n%s", name, code, errb.String())
			}
			errb.Reset()
			code = runMain(append(append([]string{}, cmd...), "-h"), &out, &errb)
			if code != 0 || errb.Len() == 0 {
				t.Errorf("%s -h: exit %d, want 0 and the usage; stderr:\n%s", name, code, errb.String())
			}
		})
	}
	var out, errb strings.Builder
	if code := runMain([]string{"bench", "-duration", "soon"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `invalid value "soon" for flag -duration`) {
		t.Errorf("bench -duration soon: exit %d, want 2; stderr:\n%s", code, errb.String())
	}
}

// TestDemoReplicasFlag: `demo -replicas` outside 0..2 is a usage error
// (exit 2) before any redis-server is started; bench/run.sh uses -replicas 0
// for its 3-masters-only setup.
func TestDemoReplicasFlag(t *testing.T) {
	for _, v := range []string{"-1", "3"} {
		var out, errb strings.Builder
		code := runMain([]string{"demo", "-replicas", v}, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "-replicas must be 0, 1 or 2, got "+v) {
			t.Errorf("demo -replicas %s: exit %d, want 2; stderr:\n%s", v, code, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("demo -replicas %s printed %q; want nothing started", v, out.String())
		}
	}
}

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

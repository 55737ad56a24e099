package poll

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	errGone := errors.New("node gone")
	for _, tc := range []struct {
		name    string
		check   func(n int) (bool, string, error)
		timeout time.Duration
		wantErr string // "" for success
		wantIs  error
		minRuns int
	}{
		{name: "done at once", check: func(int) (bool, string, error) { return true, "", nil }, minRuns: 1},
		{name: "done on the third check", check: func(n int) (bool, string, error) { return n >= 3, "only " + string(rune('0'+n)), nil }, minRuns: 3},
		{name: "an error ends it", check: func(n int) (bool, string, error) {
			if n == 2 {
				return false, "", errGone
			}
			return false, "waiting", nil
		}, wantErr: "wait for the thing: node gone", wantIs: errGone, minRuns: 2},
		{name: "timeout keeps the last state", check: func(n int) (bool, string, error) {
			if n == 1 {
				return false, "2 of 3 nodes", nil
			}
			return false, "", nil // no news: the state seen before stays
		}, timeout: 50 * time.Millisecond, wantErr: "(last state: 2 of 3 nodes)", wantIs: context.DeadlineExceeded, minRuns: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := 0
			err := Until(context.Background(), "the thing", Options{Every: time.Millisecond, Timeout: tc.timeout},
				func(context.Context) (bool, string, error) { runs++; return tc.check(runs) })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Fatalf("err = %v, want errors.Is %v", err, tc.wantIs)
			}
			if runs < tc.minRuns {
				t.Errorf("check ran %d times, want at least %d", runs, tc.minRuns)
			}
		})
	}
}

// The context's own deadline wins over Timeout, and Progress hears the
// missing state while the wait goes on.
func TestUntilDeadlineAndProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	var heard []string
	err := Until(ctx, "x", Options{Every: time.Millisecond, Timeout: time.Hour, Progress: func(why string) { heard = append(heard, why) }},
		func(context.Context) (bool, string, error) { return false, "still no", nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if len(heard) == 0 || heard[len(heard)-1] != "still no" {
		t.Errorf("progress heard %q", heard)
	}
}

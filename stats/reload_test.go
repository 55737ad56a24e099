package stats

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeReloader struct{ err error }

func (f fakeReloader) Reload() (ReloadResult, error) {
	if f.err != nil {
		return ReloadResult{}, f.err
	}
	return ReloadResult{Applied: []string{"proxy.users"}, Ignored: []string{}}, nil
}

func TestReloadEndpoint(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const right = "Bearer s3cret-token-0123456789"
	for _, tc := range []struct {
		name, file, auth string
		reloader         Reloader
		want             int
		body             string
	}{
		{"disabled", "", right, fakeReloader{}, 403, "admin API disabled"},
		{"no token", tokenFile, "", fakeReloader{}, 401, "missing bearer token"},
		{"wrong token", tokenFile, "Bearer nope", fakeReloader{}, 403, "wrong token"},
		{"no reloader", tokenFile, right, nil, 404, "cannot reload"},
		{"invalid file", tokenFile, right, fakeReloader{errors.New("/etc/x.yaml: line 3: unknown key proxy.x")}, 400,
			"/etc/x.yaml: line 3: unknown key proxy.x\n"},
		{"reloaded", tokenFile, right, fakeReloader{}, 200, `{"applied":["proxy.users"],"ignored":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := Parts{}
			if tc.reloader != nil {
				parts.Reloader = tc.reloader
			}
			s, err := New(Config{Listen: "127.0.0.1:0", AdminTokenFile: tc.file}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), &readySource{}, parts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			defer func() { cancel(); <-done }()
			req, _ := http.NewRequest("POST", "http://"+s.Addr().String()+"/api/v1/reload", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.body) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, b, tc.want, tc.body)
			}
			if tc.want == 400 && string(b) != tc.body {
				t.Errorf("400 body %q, want exactly the error text %q", b, tc.body)
			}
		})
	}
}

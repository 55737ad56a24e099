package scaler

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// within bounds every wait; it is a hang detector, not a timing assertion.
const within = 10 * time.Second

func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// testNotifier has millisecond backoff and reports results on a channel.
func testNotifier(url string, on []string, log *slog.Logger) (*notifier, chan string) {
	results := make(chan string, 1000)
	n := newNotifier(NotifyConfig{Webhook: url, On: on}, nil, log, func(r string) { results <- r })
	n.backoff, n.maxBackoff = 10*time.Millisecond, 40*time.Millisecond
	return n, results
}

// start runs n until the returned stop is called (or the test ends); stop
// fails the test if run does not return.
func start(t *testing.T, n *notifier) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.run(ctx); close(done) }()
	stop = func() {
		cancel()
		recv(t, "run to return after cancel", done)
	}
	t.Cleanup(stop)
	return stop
}

// receiver answers each POST with status(attempt) and passes on the bodies
// it answered with 2xx.
func receiver(t *testing.T, status func(attempt int64) int) (*httptest.Server, *atomic.Int64, chan map[string]any) {
	var attempts atomic.Int64
	got := make(chan map[string]any, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := attempts.Add(1)
		var body map[string]any
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&body) != nil {
			t.Errorf("attempt %d: want a JSON POST, got %s %q", a, r.Method, r.Header.Get("Content-Type"))
		}
		code := status(a)
		w.WriteHeader(code)
		if code < 300 {
			got <- body
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &attempts, got
}

func TestNotifierRetriesThenDelivers(t *testing.T) {
	srv, attempts, got := receiver(t, func(a int64) int {
		if a <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	n, results := testNotifier(srv.URL, notifyKinds, nil)
	start(t, n)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	n.notify(Event{Time: at, Term: 7, Actor: "proxy-a", Kind: "scale_success", Slot: -1, Node: "10.0.0.9:6379",
		Keys: 42, Reason: "scale_out done: memory > 80%", Action: "scale_out", Masters: 4})

	body := recv(t, "the delivery", got)
	want := map[string]any{"time": "2025-03-01T11:00:00Z", "term": 7.0, "actor": "proxy-a", "kind": "scale_success",
		"slot": -1.0, "node": "10.0.0.9:6379", "keys": 42.0, "reason": "scale_out done: memory > 80%",
		"action": "scale_out", "masters": 4.0, "maxmemory": 0.0,
		"text": "slotway scale_success: scale_out done: memory &gt; 80% (4 masters, node 10.0.0.9:6379, 42 keys)"}
	for k, w := range want {
		if body[k] != w {
			t.Errorf("%s: got %#v, want %#v", k, body[k], w)
		}
	}
	if a := attempts.Load(); a != 3 {
		t.Errorf("delivered after %d attempts, want 3", a)
	}
	if r := recv(t, "the result", results); r != "sent" {
		t.Errorf("result %q, want sent", r)
	}

	// In-order delivery makes the next body the next event, so a duplicate
	// of the first would show up here.
	n.notify(Event{Kind: "scale_failure", Slot: 5, Reason: "line one\nline two"})
	body = recv(t, "the second delivery", got)
	if body["kind"] != "scale_failure" || body["text"] != "slotway scale_failure: line one line two (slot 5)" {
		t.Errorf("second delivery: got %v", body)
	}
	if a := attempts.Load(); a != 4 {
		t.Errorf("%d attempts in all, want 4", a)
	}
}

func TestNotifierSkipsDisabledKinds(t *testing.T) {
	srv, attempts, got := receiver(t, func(int64) int { return http.StatusNoContent })
	n, _ := testNotifier(srv.URL, []string{"scale_failure"}, nil)
	start(t, n)
	n.notify(Event{Kind: "scale_success", Slot: -1})
	n.notify(Event{Kind: "slot_moved", Slot: 3})
	n.notify(Event{Kind: "scale_failure", Slot: -1})
	if body := recv(t, "the delivery", got); body["kind"] != "scale_failure" {
		t.Errorf("first delivery is %v, want the scale_failure", body["kind"])
	}
	if a := attempts.Load(); a != 1 {
		t.Errorf("%d requests, want 1", a)
	}

	var nilN *notifier
	nilN.notify(Event{Kind: "scale_failure"}) // must not panic
	off, _ := testNotifier("", notifyKinds, nil)
	off.notify(Event{Kind: "scale_failure"})
	if len(off.queue) != 0 {
		t.Errorf("a notifier without a webhook queued %d events", len(off.queue))
	}
}

func TestNotifierNoRetryOn4xx(t *testing.T) {
	kinds := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Kind string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		kinds <- ev.Kind
		http.Error(w, "invalid_payload", http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	var logs bytes.Buffer // read only after run has returned
	n, results := testNotifier(srv.URL, notifyKinds, slog.New(slog.NewTextHandler(&logs, nil)))
	stop := start(t, n)
	n.notify(Event{Kind: "threshold_breach", Slot: -1})
	n.notify(Event{Kind: "scale_failure", Slot: -1})
	if k := recv(t, "the first request", kinds); k != "threshold_breach" {
		t.Fatalf("first request for %q", k)
	}
	if k := recv(t, "the second request", kinds); k != "scale_failure" {
		t.Errorf("second request for %q, want scale_failure: the 400 was retried", k)
	}
	for range 2 {
		if r := recv(t, "a result", results); r != "failed" {
			t.Errorf("result %q, want failed", r)
		}
	}
	stop()
	if s := logs.String(); !strings.Contains(s, "webhook notification failed") || !strings.Contains(s, "invalid_payload") {
		t.Errorf("final failure not logged with the receiver's answer:\n%s", s)
	}
}

func TestNotifierNeverBlocks(t *testing.T) {
	inFlight := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client hanging up only after the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		inFlight <- struct{}{}
		<-r.Context().Done() // hangs until the notifier gives up
	}))
	t.Cleanup(srv.Close)
	n, results := testNotifier(srv.URL, notifyKinds, nil)
	n.timeout = time.Hour // the hang must end by cancel alone
	stop := start(t, n)

	n.notify(Event{Kind: "scale_success", Slot: 0})
	recv(t, "the first request", inFlight)
	const extra = 150
	returned := make(chan struct{})
	go func() {
		for i := 1; i <= extra; i++ {
			n.notify(Event{Kind: "scale_success", Slot: i})
		}
		close(returned)
	}()
	recv(t, "notify to return while the receiver hangs", returned)
	for range extra - n.queueLen {
		if r := recv(t, "a drop", results); r != "dropped" {
			t.Fatalf("result %q, want dropped", r)
		}
	}

	stop()
	// run has returned, so the queue is ours to read.
	if len(n.queue) != n.queueLen || n.queue[0].Slot != extra-n.queueLen+1 || n.queue[len(n.queue)-1].Slot != extra {
		t.Errorf("queue holds %d events, slots %d..%d; want %d, %d..%d", len(n.queue), n.queue[0].Slot,
			n.queue[len(n.queue)-1].Slot, n.queueLen, extra-n.queueLen+1, extra)
	}
}

func TestNotifierAttemptTimeout(t *testing.T) {
	var attempts atomic.Int64
	hung, delivered := make(chan struct{}, 1), make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // see TestNotifierNeverBlocks
		if attempts.Add(1) == 1 {
			hung <- struct{}{}
			<-r.Context().Done() // only the attempt timeout ends this
			return
		}
		delivered <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	n, results := testNotifier(srv.URL, notifyKinds, nil)
	n.timeout = 50 * time.Millisecond
	start(t, n)
	n.notify(Event{Kind: "scale_failure", Slot: -1})
	recv(t, "the hanging attempt", hung)
	recv(t, "the retry", delivered)
	if r := recv(t, "the result", results); r != "sent" {
		t.Errorf("result %q, want sent", r)
	}
}

func TestNotifyConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  NotifyConfig
		want []string // substrings; none means valid
	}{
		{"off", NotifyConfig{}, nil},
		{"every kind", NotifyConfig{Webhook: "http://127.0.0.1:8080/hook", On: notifyKinds}, nil},
		{"https", NotifyConfig{Webhook: "https://hooks.example.com/T1/B2/s3cret", On: []string{"scale_failure"}}, nil},
		{"no scheme", NotifyConfig{Webhook: "hooks.example.com/T1/B2/s3cret", On: notifyKinds},
			[]string{`notify.webhook: must be an absolute http or https URL, got scheme "" and host ""`}},
		{"ftp", NotifyConfig{Webhook: "ftp://example.com/x", On: notifyKinds}, []string{`got scheme "ftp"`}},
		{"no host", NotifyConfig{Webhook: "http:///s3cret", On: notifyKinds}, []string{`notify.webhook: must be an absolute http or https URL, got scheme "http" and host ""`}},
		{"unparsable", NotifyConfig{Webhook: "http://[::1/s3cret", On: notifyKinds}, []string{"notify.webhook: not a valid URL"}},
		{"nothing on", NotifyConfig{Webhook: "http://example.com/"}, []string{"notify.on: empty"}},
		{"bad kind", NotifyConfig{On: []string{"scale_success", "scale_out"}},
			[]string{`notify.on[1]: must be one of threshold_breach, scale_success, scale_failure, got "scale_out"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q repeats the webhook's secret path", err)
			}
		})
	}
}

package scaler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slotway/slotway/internal/config"
	"github.com/slotway/slotway/internal/kick"
)

// NotifyConfig is `scaler.notify`.
type NotifyConfig struct {
	// Webhook receives a JSON POST per enabled event; empty turns
	// notifications off. Slack incoming webhooks work as they are.
	Webhook string `yaml:"webhook"`
	// On lists the event kinds to send; DefaultConfig enables all three.
	On []string `yaml:"on"` // threshold_breach, scale_success, scale_failure
}

// notifyKinds are the event kinds a webhook can be told about.
var notifyKinds = []string{"threshold_breach", "scale_success", "scale_failure"}

// Validate reports every bad field, with paths relative to `scaler`.
// Messages never repeat the whole URL: a webhook's path is often its secret.
func (c NotifyConfig) Validate() error {
	var errs []error
	if c.Webhook != "" {
		u, err := url.Parse(c.Webhook)
		switch {
		case err != nil:
			errs = append(errs, config.Errorf("notify.webhook", "not a valid URL"))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs = append(errs, config.Errorf("notify.webhook", "must be an absolute http or https URL, got scheme %q and host %q",
				u.Scheme, u.Host))
		}
		if len(c.On) == 0 {
			errs = append(errs, config.Errorf("notify.on", "empty, so the webhook would never be called; list %s or drop the webhook",
				strings.Join(notifyKinds, ", ")))
		}
	}
	for i, k := range c.On {
		if !slices.Contains(notifyKinds, k) {
			errs = append(errs, config.Errorf(fmt.Sprintf("notify.on[%d]", i), "must be one of %s, got %q",
				strings.Join(notifyKinds, ", "), k))
		}
	}
	return errors.Join(errs...)
}

// notifier posts enabled events to the webhook, in order, from one queue.
// notify is safe for concurrent use; run is called once. Delivery is at
// least once: a retry after a timeout may repeat what the receiver got.
type notifier struct {
	// url and on are guarded by mu: a reload changes them (setConfig).
	url    string
	on     []string
	client *http.Client
	log    *slog.Logger
	// result is told "sent", "failed" or "dropped" per event, from notify's
	// caller and from run; it must not block.
	result func(result string)

	// Fields rather than constants so tests run in milliseconds.
	queueLen   int           // events waiting; the oldest goes when full
	timeout    time.Duration // one attempt, connect to end of response
	backoff    time.Duration // before the second attempt; doubles after
	maxBackoff time.Duration
	attempts   int // including the first

	mu    sync.Mutex
	queue []Event
	wake  chan struct{} // cap 1: "the queue may be non-empty"
}

// newNotifier expects a validated cfg. client and log may be nil.
func newNotifier(cfg NotifyConfig, client *http.Client, log *slog.Logger, result func(result string)) *notifier {
	if client == nil {
		// Not http.DefaultClient: others may change it, and the per-attempt
		// context already bounds every request.
		client = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if result == nil {
		result = func(string) {}
	}
	return &notifier{url: cfg.Webhook, on: slices.Clone(cfg.On), client: client, log: log, result: result,
		queueLen: 100, timeout: 5 * time.Second, backoff: time.Second, maxBackoff: 30 * time.Second, attempts: 6,
		wake: make(chan struct{}, 1)}
}

// notify queues ev if its kind is enabled. It never waits for the network:
// it is called from the scaling loop, which a slow receiver must not stall.
func (n *notifier) notify(ev Event) {
	if n == nil {
		return
	}
	n.mu.Lock()
	if n.url == "" || !slices.Contains(n.on, ev.Kind) {
		n.mu.Unlock()
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	// The newest events say most about the cluster as it is now.
	full := len(n.queue) >= n.queueLen
	var dropped Event
	if full {
		dropped, _ = n.shift()
	}
	n.queue = append(n.queue, ev)
	n.mu.Unlock()
	kick.Send(n.wake)
	if full {
		n.log.Warn("scaler: webhook queue full; oldest notification dropped", "kind", dropped.Kind, "term", dropped.Term)
		n.result("dropped")
	}
}

// run delivers queued events until ctx ends; an event being sent then is lost.
func (n *notifier) run(ctx context.Context) {
	if n == nil {
		<-ctx.Done()
		return
	}
	for {
		n.mu.Lock()
		ev, ok := n.shift()
		n.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-n.wake:
			}
			continue
		}
		n.deliver(ctx, ev)
		if ctx.Err() != nil {
			return
		}
	}
}

// shift takes the oldest event off the queue; n.mu is held.
func (n *notifier) shift() (Event, bool) {
	if len(n.queue) == 0 {
		return Event{}, false
	}
	ev := n.queue[0]
	n.queue[0] = Event{} // the backing array outlives the slot
	n.queue = n.queue[1:]
	return ev, true
}

func (n *notifier) deliver(ctx context.Context, ev Event) {
	// Cannot fail: the payload holds only strings and integers.
	body, _ := json.Marshal(webhookPayload{Text: notifyText(ev), Time: ev.Time.UTC().Format(time.RFC3339Nano),
		Term: ev.Term, Actor: ev.Actor, Kind: ev.Kind, Slot: ev.Slot, Node: ev.Node, Keys: ev.Keys, Reason: ev.Reason,
		Action: ev.Action, Masters: ev.Masters, MaxMemory: ev.MaxMemory})
	wait := n.backoff
	for attempt := 1; ; attempt++ {
		retry, err := n.post(ctx, body)
		if err == nil {
			n.result("sent")
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || attempt >= n.attempts {
			n.log.Error("scaler: webhook notification failed", "kind", ev.Kind, "term", ev.Term, "attempts", attempt, "err", err)
			n.result("failed")
			return
		}
		n.log.Debug("scaler: webhook notification will be retried", "kind", ev.Kind, "attempt", attempt, "in", wait, "err", err)
		// No jitter: only the leader notifies, so there is no herd to spread.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, n.maxBackoff)
	}
}

// post makes one attempt; retry says whether another could succeed.
func (n *notifier) post(ctx context.Context, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	n.mu.Lock()
	webhook := n.url
	n.mu.Unlock()
	if webhook == "" {
		return false, errors.New("scaler.notify.webhook was removed by a reload")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("build request: invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "slotway")
	resp, err := n.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, whose path is often the secret.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return true, fmt.Errorf("post webhook: %w", err)
	}
	// A little of the answer for the log (Slack says e.g. "invalid_payload"),
	// then the rest drained so the connection is kept for the next event.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	err = fmt.Errorf("webhook answered %s: %q", resp.Status, strings.TrimSpace(string(head)))
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
}

// webhookPayload has no omitempty, so receivers' templates always find
// every field; it is its own type so that changes to Event do not change
// the webhook's format by accident.
type webhookPayload struct {
	Text   string `json:"text"` // Slack shows this
	Time   string `json:"time"` // RFC 3339, UTC
	Term   uint64 `json:"term"`
	Actor  string `json:"actor"`
	Kind   string `json:"kind"`
	Slot   int    `json:"slot"` // -1 when not about one slot
	Node   string `json:"node"`
	Keys   int64  `json:"keys"`
	Reason string `json:"reason"`
	// What the autoscaler did or wants, e.g. scale_out to 4 masters.
	Action    string `json:"action"`
	Masters   int    `json:"masters"`
	MaxMemory int64  `json:"maxmemory"` // bytes, for vertical steps
}

// slackEscape escapes what Slack reads as markup, as its docs require, so
// a reason like "ops < threshold" shows as written.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// notifyText is one line for a chat channel, e.g.
// "slotway scale_success: scale_out done: memory high (4 masters, node 10.0.0.9:6379)".
func notifyText(ev Event) string {
	s := "slotway " + ev.Kind
	if ev.Reason != "" {
		s += ": " + ev.Reason
	}
	var details []string
	if ev.Masters > 0 {
		details = append(details, strconv.Itoa(ev.Masters)+" masters")
	}
	if ev.MaxMemory > 0 {
		details = append(details, "maxmemory "+strconv.FormatInt(ev.MaxMemory, 10))
	}
	if ev.Node != "" {
		details = append(details, "node "+ev.Node)
	}
	if ev.Slot >= 0 {
		details = append(details, "slot "+strconv.Itoa(ev.Slot))
	}
	if ev.Keys != 0 {
		details = append(details, strconv.FormatInt(ev.Keys, 10)+" keys")
	}
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	// Fields also folds newlines from a reason into the single line.
	return slackEscape.Replace(strings.Join(strings.Fields(s), " "))
}

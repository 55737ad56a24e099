package proxy

import (
	"strings"
	"testing"
	"time"
)

func TestRetryBudgetFor(t *testing.T) {
	for _, tc := range []struct {
		nodeTimeout, want time.Duration
	}{
		{time.Second, 4 * time.Second},
		{2 * time.Second, 6 * time.Second},
		{5 * time.Second, 12 * time.Second},
		{redisDefaultNodeTimeout, maxRetryBudget}, // 32 s, capped
		{time.Minute, maxRetryBudget},
	} {
		if got := retryBudgetFor(tc.nodeTimeout); got != tc.want {
			t.Errorf("retryBudgetFor(%v) = %v, want %v", tc.nodeTimeout, got, tc.want)
		}
	}
}

// TestRetryTimeoutConfig: retry_timeout 0 (the default) derives the budget,
// an explicit one wins, a negative one is rejected.
func TestRetryTimeoutConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cluster.Seeds = []string{"127.0.0.1:1"}
	cfg.Listen = "127.0.0.1:0"
	for _, tc := range []struct {
		retryTimeout, want time.Duration
	}{
		{0, maxRetryBudget}, // Redis's default node timeout until the cluster's is read
		{1500 * time.Millisecond, 1500 * time.Millisecond},
	} {
		cfg.RetryTimeout = tc.retryTimeout
		s, err := New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.ln.Close()
		if got := s.retryBudget(); got != tc.want {
			t.Errorf("retry_timeout %v: budget %v, want %v", tc.retryTimeout, got, tc.want)
		}
	}
	cfg.RetryTimeout = -time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "retry_timeout: must be >= 0") {
		t.Errorf("retry_timeout -1s: %v", err)
	}
}

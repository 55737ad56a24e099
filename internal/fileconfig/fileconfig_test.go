package fileconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slotway/slotway/internal/config"
)

// FuzzParse feeds the loader the whole file's schema (sections that
// unmarshal themselves, percentages, sizes, maps, lists of sections): it
// must never panic, whatever the input.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "slotway.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("proxy:\n  retry_timeout: 3\n  cluster: {seeds: [a:1]}\nha: 3\nscaler: {imbalance: x, plans: [1gb, {a: 1}]}\nlog: {format: [x]}\n"))
	f.Add([]byte("proxy: &a {users: [{name: *a}], cross_slot: {mget: *a}}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := Default()
		_ = config.Parse(in, &cfg)
	})
}

package proxy

import (
	"testing"

	"github.com/slotway/slotway/internal/redisinfo"
)

func TestAggregateField(t *testing.T) {
	cases := []struct {
		name string
		vals []string
		want string
	}{
		{"used_memory", []string{"100", "200", "300"}, "600"},
		{"keyspace_hits", []string{"0", "0"}, "0"},
		{"mem_fragmentation_ratio", []string{"1.00", "2.00"}, "1.50"},
		{"used_memory_peak_perc", []string{"90.00%", "100.00%"}, "95.00%"},
		{"rdb_bgsave_in_progress", []string{"0", "1", "0"}, "1"},
		{"loading", []string{"0", "0"}, "0"},
		{"rdb_last_save_time", []string{"1700000100", "1700000000"}, "1700000000"},
		{"total_system_memory", []string{"1000", "1000"}, "1000"},
		{"number_of_cached_scripts", []string{"2", "3"}, "3"},
		{"maxmemory_policy", []string{"noeviction", "noeviction"}, "noeviction"},
		{"maxmemory_policy", []string{"noeviction", "allkeys-lru"}, "mixed"},
		{"rdb_last_bgsave_status", []string{"ok", "err", "ok"}, "err"},
		{"instantaneous_input_kbps", []string{"0.50", "0.25"}, "0.75"},
	}
	for _, tc := range cases {
		if got := aggregateField(tc.name, tc.vals); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.name, tc.vals, got, tc.want)
		}
	}
	masters := [][]redisinfo.Section{
		redisinfo.Parse("# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"),
		redisinfo.Parse("# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"),
	}
	got := aggregateSection("memory", masters)
	if len(got) != 2 || got[0] != [2]string{"used_memory", "2097152"} || got[1] != [2]string{"used_memory_human", "2.00M"} {
		t.Errorf("memory of two masters: %v", got)
	}
}

package hashslot

import "testing"

func TestSlotKnownValues(t *testing.T) {
	// Values from the Redis cluster specification and CLUSTER KEYSLOT.
	tests := []struct {
		key  string
		want int
	}{
		{"123456789", 12739}, // the spec's CRC16 check value 0x31C3
		{"foo", 12182},
		{"bar", 5061},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363},    // empty first tag: whole key hashed
		{"foo{{bar}}zap", 4015}, // tag is "{bar"
		{"foo{bar}{zap}", 5061}, // only the first tag counts
		{"", 0},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got := Of([]byte(tc.key)); got != tc.want {
				t.Errorf("Of(%q) = %d, want %d", tc.key, got, tc.want)
			}
		})
	}
}

func BenchmarkSlot(b *testing.B) {
	key := []byte("key:__rand_int__000042")
	b.ReportAllocs()
	for b.Loop() {
		Of(key)
	}
}

func FuzzSlot(f *testing.F) {
	for _, s := range []string{"foo", "{a}b", "{}x", "a{b}c{d}", "{{}}", "}{", "{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		s := Of(key)
		if s < 0 || s >= Count {
			t.Fatalf("slot %d out of range", s)
		}
		// A key and a key made of its tag alone hash alike.
		if i := indexByte(key, '{'); i >= 0 {
			if j := indexByte(key[i+1:], '}'); j > 0 {
				tag := key[i+1 : i+1+j]
				if Of(tag) != s && indexByte(tag, '{') < 0 {
					t.Fatalf("Of(%q)=%d but its tag %q hashes to %d", key, s, tag, Of(tag))
				}
			}
		}
	})
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

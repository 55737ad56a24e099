package kick

import "testing"

func TestSendNeverBlocksAndKeepsOne(t *testing.T) {
	c := make(chan struct{}, 1)
	Send(c)
	Send(c) // pending already: must not block
	if len(c) != 1 {
		t.Fatalf("%d wake-ups pending, want 1", len(c))
	}
	<-c
	Send(make(chan struct{})) // nobody receiving, no buffer: must not block
}

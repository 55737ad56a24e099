// Package kick is the non-blocking wake-up send: a goroutine that sleeps
// on a channel with a buffer of one is woken, and a wake-up already
// pending is enough (the sender never blocks and never queues a second).
package kick

// Send wakes the receiver of c unless a wake-up is already pending.
func Send(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Package logging builds Slotway's slog handler: text or JSON lines that a
// log shipper can parse, repeated warnings rate-limited with a count,
// errors on one line, no empty fields; and an adapter that routes
// go-redis's own logger into it. It does not decide what is logged.
package logging

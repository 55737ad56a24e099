// Package redistest is the tests' side of internal/rediscluster: New and
// NewEmpty start a cluster for a test and close it at its end (skipping,
// or failing under CI=true, without redis-server), StartStandalone runs a
// plain server, and WaitFor polls a condition. Only tests import it: it
// imports testing, which the slotway binary must not link
// (TestBinaryLinksNoTestCode).
package redistest

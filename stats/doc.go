// Package stats is Slotway's HTTP side: /healthz, /readyz and /metrics now;
// the stats page, the JSON API and the admin endpoints later. It reads the
// other components only through the small interfaces it declares (Source)
// and never mutates them except through their admin interfaces.
package stats

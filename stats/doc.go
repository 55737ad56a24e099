// Package stats is Slotway's HTTP side: the stats page (page.go, a
// self-contained HTML page polling the JSON API), the JSON API
// (/api/v1/status and the admin endpoints: scale, reload, proxy
// pause/unpause), Prometheus /metrics, /healthz, /readyz and /ha/vip for
// load balancers. It reads the other components only through the small
// interfaces it declares (Source, Holder, Reloader, Pauser) and changes
// them only through their admin interfaces; the sampler (sampler.go)
// keeps the short history the page draws.
package stats

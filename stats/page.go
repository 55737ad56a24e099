package stats

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

//go:embed web/index.html web/app.js web/scaler.js web/style.css
var webFS embed.FS

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// status assembles the JSON: the source's view plus the rates and series
// this server samples.
func (s *Server) status() Status {
	st := s.src.Status()
	if s.parts.Holder != nil {
		st.Group = s.parts.Holder.GroupStatus()
	}
	now := time.Now()
	st.Instance.Now = now
	st.Instance.UptimeSeconds = now.Sub(s.started).Seconds()
	st.Instance.StatsAddr = s.ln.Addr().String()
	st.Proxy.CommandsPerSec = s.series.rate()
	st.Proxy.P50MS, st.Proxy.P99MS, st.Proxy.LatencyWindow = s.series.latency(now, st.Proxy.Latency)
	st.Series = s.series.snapshot()
	if st.Scaler.State == "" {
		st.Scaler.State = "off: no scaler: section"
	}
	if st.Scaler.Events == nil {
		st.Scaler.Events = []ScalerEvent{}
	}
	return st
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.status())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	data := struct {
		Title       string
		InitialJSON template.JS
	}{Title: "Slotway", InitialJSON: template.JS(b)}
	if err := s.page.Execute(w, data); err != nil {
		s.log.Warn("render the stats page", "err", err)
	}
}

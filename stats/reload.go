package stats

import "net/http"

// Reloader is what the stats server needs to reload the instance's config
// (POST /api/v1/reload). Reload may be called from several requests at
// once and must serialize itself.
type Reloader interface {
	// Reload re-reads the config file and applies what can change without
	// a restart. An error means the file is invalid and nothing changed;
	// its text is the answer.
	Reload() (ReloadResult, error)
}

// ReloadResult is the answer of POST /api/v1/reload (and what the reload
// log line says): the changed keys by yaml path.
type ReloadResult struct {
	// Applied are the changed keys now in effect.
	Applied []string `json:"applied"`
	// Ignored changed in the file but need a restart; they keep their
	// running values.
	Ignored []string `json:"ignored"`
}

// handleReload answers 200 with the summary, or 400 with the error text
// when the file is invalid (then nothing changed).
func (s *Server) handleReload(w http.ResponseWriter, _ *http.Request) {
	p := s.parts.Reloader
	if p == nil {
		http.Error(w, "this instance cannot reload its config", http.StatusNotFound)
		return
	}
	res, err := p.Reload()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

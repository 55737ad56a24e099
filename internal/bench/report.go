package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a Run; results.json is this, marshalled.
type Report struct {
	Config      ReportConfig `json:"config"`
	Start       time.Time    `json:"start"`
	End         time.Time    `json:"end"`
	Interrupted bool         `json:"interrupted"` // ctx ended before the last phase
	Results     []Result     `json:"results"`     // one per size and command, in run order
	Cleanup     Cleanup      `json:"cleanup"`
}

// ReportConfig is the Config as run (defaults applied, no credentials).
type ReportConfig struct {
	Endpoint  string `json:"endpoint"`
	Duration  string `json:"duration"` // per phase
	Clients   int    `json:"clients"`
	Pipeline  int    `json:"pipeline"`
	Sizes     []int  `json:"sizes"`
	Rate      int    `json:"rate"` // total commands/s; 0: closed loop
	Mode      string `json:"mode"` // "closed-loop" or "open-loop"
	MaxKeys   int    `json:"max_keys"`
	KeySpace  int64  `json:"key_space_bytes"`
	OpTimeout string `json:"op_timeout"`
	Auth      bool   `json:"auth"` // a password was sent
}

func reportConfig(c Config) ReportConfig {
	mode := "closed-loop"
	if c.Rate > 0 {
		mode = "open-loop"
	}
	return ReportConfig{
		Endpoint: c.Addr, Duration: c.Duration.String(), Clients: c.Clients, Pipeline: c.Pipeline,
		Sizes: c.Sizes, Rate: c.Rate, Mode: mode, MaxKeys: c.MaxKeys, KeySpace: c.KeySpace,
		OpTimeout: c.OpTimeout.String(), Auth: c.Password != "",
	}
}

// Result of one phase. Latencies are in milliseconds, from a Histogram
// (percentiles at most 0.8 % high; Max exact), over every command sent,
// failed ones included (a timeout counts its full wait), plus in an open
// loop the Unsent ones.
type Result struct {
	SizeBytes  int     `json:"size_bytes"`
	Command    string  `json:"command"`
	Ops        int64   `json:"ops"` // commands answered without error (a GET miss included)
	OpsPerSec  float64 `json:"ops_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"` // value bytes written or read, 10^6 bytes
	P50        float64 `json:"p50_ms"`
	P95        float64 `json:"p95_ms"`
	P99        float64 `json:"p99_ms"`
	P999       float64 `json:"p999_ms"`
	Max        float64 `json:"max_ms"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Misses     int64   `json:"misses"` // GETs answered nil (the SET of that key failed)
	// Unsent counts open-loop commands due in the phase but never sent
	// because the clients were that far behind; they are in the
	// percentiles as late by at least (phase end - due time).
	Unsent     int64   `json:"unsent"`
	Keys       int     `json:"keys"`
	ElapsedSec float64 `json:"elapsed_s"`
}

// Cleanup is how the removal of the benchmark keys went.
type Cleanup struct {
	Deleted int64  `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

var csvHeader = []string{"size_bytes", "command", "ops", "ops_per_sec", "mb_per_sec",
	"p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "errors"}

func fixed(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

// WriteCSV writes a header and one row per result.
func WriteCSV(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	for _, r := range results {
		_ = cw.Write([]string{
			strconv.Itoa(r.SizeBytes), r.Command, strconv.FormatInt(r.Ops, 10),
			fixed(r.OpsPerSec, 1), fixed(r.MBPerSec, 3),
			fixed(r.P50, 3), fixed(r.P95, 3), fixed(r.P99, 3), fixed(r.P999, 3), fixed(r.Max, 3),
			strconv.FormatInt(r.Errors, 10),
		})
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes rep as indented JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the results as an aligned text table for a terminal.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tcommand\tops/s\tMB/s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", SizeLabel(r.SizeBytes), r.Command,
			fixed(r.OpsPerSec, 0), fixed(r.MBPerSec, 1), fixed(r.P50, 3), fixed(r.P99, 3),
			fixed(r.P999, 3), fixed(r.Max, 3), r.Errors)
	}
	return tw.Flush()
}

// SizeLabel renders a byte count compactly: 16 B, 1 KiB, 512 KiB, 4 MiB.
func SizeLabel(n int) string {
	for _, u := range []struct {
		name string
		mult int
	}{{"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.Itoa(n/u.mult) + " " + u.name
		}
	}
	return strconv.Itoa(n) + " B"
}

// Files written by WriteFiles, in dir.
const (
	FileCSV  = "results.csv"
	FileJSON = "results.json"
	FileSVG  = "results.svg"
)

// WriteFiles writes results.csv, results.json and results.svg into dir
// (created if missing) and returns their paths. Each file is written
// whole to a temporary name first, so a reader never sees half a file.
func WriteFiles(dir string, rep *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write results: %w", err)
	}
	var paths []string
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{FileCSV, func(w io.Writer) error { return WriteCSV(w, rep.Results) }},
		{FileJSON, func(w io.Writer) error { return WriteJSON(w, rep) }},
		{FileSVG, func(w io.Writer) error { return WriteSVG(w, rep) }},
	} {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			return paths, fmt.Errorf("write %s: %w", f.name, err)
		}
		p := filepath.Join(dir, f.name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
			return paths, fmt.Errorf("write results: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return paths, fmt.Errorf("write results: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &Report{
		Config: reportConfig(Config{Addr: "127.0.0.1:7100", Duration: 2 * time.Second, Clients: 4, Pipeline: 1,
			Sizes: []int{16, 1024}, MaxKeys: 10000, KeySpace: DefaultKeySpace, OpTimeout: time.Second, Password: "s3cret"}),
		Start: start, End: start.Add(9 * time.Second),
		Results: []Result{
			{SizeBytes: 16, Command: "SET", Ops: 90000, OpsPerSec: 45000.04, MBPerSec: 0.72, P50: 0.081, P95: 0.1204, P99: 0.2, P999: 1.5, Max: 3.25, Keys: 10000, ElapsedSec: 2},
			{SizeBytes: 16, Command: "GET", Ops: 100000, OpsPerSec: 50000, MBPerSec: 0.8, P50: 0.07, P95: 0.1, P99: 0.19, P999: 1, Max: 2, Errors: 2, FirstError: "ERR boom, \"quoted\"", Keys: 10000, ElapsedSec: 2},
			{SizeBytes: 1024, Command: "SET", Ops: 0, Errors: 5, FirstError: "OOM", Keys: 10000, ElapsedSec: 2},
			{SizeBytes: 1024, Command: "GET", Ops: 60000, OpsPerSec: 30000, MBPerSec: 30.72, P50: 0.1, P95: 0.2, P99: 0.4, P999: 2, Max: 9, Misses: 60000, Keys: 1, ElapsedSec: 2},
		},
		Cleanup: Cleanup{Deleted: 10000},
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sampleReport().Results); err != nil {
		t.Fatal(err)
	}
	want := `size_bytes,command,ops,ops_per_sec,mb_per_sec,p50_ms,p95_ms,p99_ms,p999_ms,max_ms,errors
16,SET,90000,45000.0,0.720,0.081,0.120,0.200,1.500,3.250,0
16,GET,100000,50000.0,0.800,0.070,0.100,0.190,1.000,2.000,2
1024,SET,0,0.0,0.000,0.000,0.000,0.000,0.000,0.000,5
1024,GET,60000,30000.0,30.720,0.100,0.200,0.400,2.000,9.000,0
`
	if got := b.String(); got != want {
		t.Errorf("CSV (-want +got):\n-%s\n+%s", want, got)
	}
}

func TestWriteJSON(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "s3cret") {
		t.Fatal("the password is in the JSON")
	}
	var raw struct {
		Config  map[string]any   `json:"config"`
		Start   string           `json:"start"`
		End     string           `json:"end"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range csvHeader {
		if _, ok := raw.Results[0][k]; !ok {
			t.Errorf("result has no %q: %v", k, raw.Results[0])
		}
	}
	if raw.Config["endpoint"] != "127.0.0.1:7100" || raw.Config["duration"] != "2s" || raw.Config["auth"] != true ||
		raw.Config["mode"] != "closed-loop" {
		t.Errorf("config: %v", raw.Config)
	}
	if raw.Start != "2026-03-01T12:00:00Z" || raw.End != "2026-03-01T12:00:09Z" {
		t.Errorf("start %q end %q", raw.Start, raw.End)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Results, rep.Results) || back.Cleanup != rep.Cleanup {
		t.Errorf("round trip (-want +got):\n-%+v\n+%+v", rep.Results, back.Results)
	}
}

// TestWriteSVG checks the chart is well-formed XML, self-contained, and has
// both charts with a line per command.
func TestWriteSVG(t *testing.T) {
	rep := sampleReport()
	rep.Config.Rate, rep.Config.Mode = 500, "open-loop"
	var b bytes.Buffer
	if err := WriteSVG(&b, rep); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	dec := xml.NewDecoder(strings.NewReader(svg))
	counts := map[string]int{}
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			counts[el.Name.Local]++
			for _, a := range el.Attr {
				if a.Name.Local == "href" || strings.HasPrefix(a.Name.Local, "on") {
					t.Errorf("external reference or handler: <%s %s=%q>", el.Name.Local, a.Name.Local, a.Value)
				}
			}
		case xml.CharData:
			texts = append(texts, string(el))
		}
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"Throughput by value size", "p99 latency by value size", "value size (bytes, log scale)",
		"16 B", "1 KiB", "at 500 ops/s"} {
		if !strings.Contains(all, want) {
			t.Errorf("no text %q in the SVG: %s", want, all)
		}
	}
	if counts["g"] != 2 || counts["script"] != 0 || counts["image"] != 0 {
		t.Errorf("elements: %v", counts)
	}
	// Throughput: SET has one point (1 KiB SET had no answers), GET two; p99 alike.
	if n := strings.Count(svg, `<polyline class="series"`); n != 4 {
		t.Errorf("%d series lines, want 2 per chart", n)
	}
	if n := strings.Count(svg, "<circle"); n != 6 {
		t.Errorf("%d points, want 6", n)
	}

	var empty bytes.Buffer
	if err := WriteSVG(&empty, &Report{}); err != nil || !strings.Contains(empty.String(), "no data") {
		t.Errorf("empty report: %v\n%s", err, empty.String())
	}
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "nested")
	paths, err := WriteFiles(dir, sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, FileCSV), filepath.Join(dir, FileJSON), filepath.Join(dir, FileSVG)}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("paths (-want +got):\n-%v\n+%v", want, paths)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files in %s, want 3 (no temporaries left)", len(entries), dir)
	}
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFiles(filepath.Join(file, "sub"), sampleReport()); err == nil {
		t.Error("no error for a directory under a regular file")
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sampleReport().Results); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "p99 ms") || !strings.Contains(lines[4], "1 KiB") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestSizeLabel(t *testing.T) {
	for n, want := range map[int]string{16: "16 B", 1000: "1000 B", 1024: "1 KiB", 524288: "512 KiB", 1536: "1536 B", 4 << 20: "4 MiB"} {
		if got := SizeLabel(n); got != want {
			t.Errorf("SizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

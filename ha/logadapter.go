package ha

import (
	"bytes"
	"context"
	"log/slog"
)

// logAdapter turns memberlist's "[LEVEL] memberlist: text" lines into
// leveled slog records.
type logAdapter struct{ log *slog.Logger }

func (a logAdapter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	// The standard logger prefixes a timestamp; the level tag follows it.
	if i := bytes.IndexByte(line, '['); i >= 0 {
		if j := bytes.IndexByte(line[i:], ']'); j > 0 {
			switch string(line[i+1 : i+j]) {
			case "DEBUG", "TRACE":
				level = slog.LevelDebug
			case "WARN":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			line = bytes.TrimSpace(line[i+j+1:])
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	a.log.Log(context.Background(), level, string(line), "source", "memberlist")
	return len(p), nil
}

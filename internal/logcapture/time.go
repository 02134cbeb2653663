package logcapture

import "log/slog"

// TimeFormat is how log records are stamped: RFC 3339 in UTC with
// milliseconds, in text and JSON alike (slog's defaults are local time,
// milliseconds in text and nanoseconds in JSON).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// UTCTime is a slog.HandlerOptions.ReplaceAttr that writes the record
// time as TimeFormat in UTC.
func UTCTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().UTC().Format(TimeFormat))
	}
	return a
}

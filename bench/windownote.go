package bench

import (
	"fmt"
	"strings"
	"time"
)

// WindowNote says why a window route's figures are not the steady state
// when the measured duration does not hold whole windows of size: a
// tumbling window emits once per size, so a 20-s run of a 1-min window
// shows at most one emission (or none) against 20 s of raw samples, and
// a 90-s run one or two depending on where the windows fell. "" when the
// duration is a whole multiple of size (or there is no window). The runs
// go on rather than refuse: the other sinks' figures stand, and a short
// run is how the tests and a quick look use the bench.
func WindowNote(size, duration time.Duration) string {
	if size <= 0 || duration <= 0 {
		return ""
	}
	if duration < size {
		return fmt.Sprintf("window %s needs -duration ≥ %s (whole windows): this %s run shows at most one emission, not the steady state; run -duration %s",
			short(size), short(size), short(duration), short(2*size))
	}
	if duration%size != 0 {
		whole := (duration/size + 1) * size
		return fmt.Sprintf("window %s emits once per %s: -duration %s is not a whole number of windows, so the figure depends on where they fell; run -duration %s",
			short(size), short(size), short(duration), short(whole))
	}
	return ""
}

// short writes d as a flag would take it: 1m, 1h, 1m30s (not 1m0s).
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

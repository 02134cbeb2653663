package ui

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/weir-edge/weir/engine"
)

// The overview: the health of every source and sink, buffer depth and the
// age of its oldest sample, throughput and errors, from engine.Status (the
// same as GET /status). The table is an htmx fragment the page reloads
// every 2 s.

func (u *UI) overviewPage() Page {
	return Page{Name: "overview", Title: "Overview", Path: "/ui/", Nav: true, Handler: u.overview,
		Routes: map[string]http.HandlerFunc{"GET /ui/overview/status": u.overviewFragment}}
}

// overviewData is the overview template's .Data.
type overviewData struct {
	Ready      bool
	NotReady   []string
	Uptime     string
	Rate       float64 // samples/s emitted by the sources, over the last refresh
	Emitted    uint64
	Sources    []componentRow
	Processors []componentRow
	Sinks      []componentRow
	NoStatus   bool
}

// componentRow is one line of the overview.
type componentRow struct {
	Name, State, LastError, LastErrorAgo string
	Up                                   bool
	Samples                              uint64  // read (source) or written (sink)
	Rate                                 float64 // per second, over the last refresh
	Errors                               uint64
	// Sinks only.
	Sink                 bool
	Depth, Capacity      int
	Fill                 int // percent
	OldestAge            string
	Dropped, Rejected    uint64
	P50ms, P99ms         float64
	HasLatency, Children bool
}

// rates remembers the previous counters, so the overview shows per-second
// rates without keeping history. All viewers share it: the rate is over
// the interval since anybody last looked, at least a second.
type rates struct {
	mu   sync.Mutex
	at   time.Time
	prev map[string]uint64
	last map[string]float64
}

func (r *rates) update(now time.Time, counts map[string]uint64) map[string]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	dt := now.Sub(r.at).Seconds()
	if r.prev != nil && dt < 1 {
		return r.last
	}
	out := map[string]float64{}
	if r.prev != nil && dt > 0 {
		for k, v := range counts {
			if p, ok := r.prev[k]; ok && v >= p {
				out[k] = float64(v-p) / dt
			}
		}
	}
	r.at, r.prev, r.last = now, counts, out
	return out
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request) {
	u.Render(w, r, u.overviewPage(), u.overviewData())
}

func (u *UI) overviewFragment(w http.ResponseWriter, r *http.Request) {
	u.RenderFragment(w, r, u.overviewPage(), "status", u.overviewData())
}

func (u *UI) overviewData() overviewData {
	if u.opts.Status == nil {
		return overviewData{NoStatus: true}
	}
	now := u.now()
	st := u.opts.Status.Status()
	d := overviewData{Ready: st.Ready, NotReady: st.NotReady, Emitted: st.Emitted,
		Uptime: (time.Duration(st.Uptime) * time.Second).String()}
	counts := map[string]uint64{"": st.Emitted}
	for _, c := range st.Components {
		counts[c.Kind+"/"+c.Name] = sampleCount(c)
	}
	rt := u.rates.update(now, counts)
	d.Rate = rt[""]
	for _, c := range st.Components {
		row := componentRow{Name: c.Name, State: c.State, Up: c.Up, LastError: c.LastError,
			Samples: sampleCount(c), Rate: rt[c.Kind+"/"+c.Name], Children: len(c.Children) > 0}
		if !c.LastErrorAt.IsZero() {
			row.LastErrorAgo = ago(now, c.LastErrorAt.UnixNano())
		}
		row.Errors = c.Counters["errors"] + c.Counters["write_errors"] + c.Counters["read_errors"]
		switch c.Kind {
		case "source":
			d.Sources = append(d.Sources, row)
		case "processor":
			d.Processors = append(d.Processors, row)
		case "sink":
			row.Sink = true
			if b := c.Buffer; b != nil {
				row.Depth, row.Capacity, row.Dropped = b.Depth, b.Capacity, b.Dropped
				if b.Capacity > 0 {
					row.Fill = int(100 * int64(b.Depth) / int64(b.Capacity))
				}
				row.OldestAge = ago(now, b.OldestEdgeTime)
			}
			row.Rejected = c.Counters["samples_rejected"]
			if l := c.Latency; l != nil && l.Count > 0 {
				row.HasLatency, row.P50ms, row.P99ms = true, l.P50ms, l.P99ms
			}
			d.Sinks = append(d.Sinks, row)
		}
	}
	for _, rows := range [][]componentRow{d.Sources, d.Processors, d.Sinks} {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	}
	return d
}

// sampleCount is what a component moved: a sink's written samples, a
// source's samples.
func sampleCount(c engine.ComponentStatus) uint64 {
	if c.Kind == "sink" {
		return c.Counters["samples_written"]
	}
	return c.Counters["samples"]
}

package modbus

import (
	"net"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// TestDeviceIsolation runs three devices side by side: healthy (answers at
// once), dead (accepts TCP, never answers) and late (answers after half the
// timeout, longer than its interval). The healthy device's cycles must keep
// their schedule: over 20 cycles of 50 ms, the cycles may run late by no
// more than 5% in total, and no single cycle by half an interval. A device
// coupled to the others would lose a whole timeout (200 ms) per cycle.
func TestDeviceIsolation(t *testing.T) {
	const (
		interval = 50 * time.Millisecond
		timeout  = 200 * time.Millisecond
		cycles   = 20
	)
	healthy := startFake(t, answerAddr)
	dead := startFake(t, func(net.Conn, mbapReq) error { return nil })
	late := startFake(t, func(c net.Conn, r mbapReq) error {
		time.Sleep(timeout / 2) // the latency under test, not synchronisation
		return answerAddr(c, r)
	})
	var cfg Config
	for _, d := range []struct{ name, addr string }{{"healthy", healthy.addr()}, {"dead", dead.addr()}, {"late", late.addr()}} {
		cfg.Devices = append(cfg.Devices, oneDevice(d.name, d.addr, interval, func(dc *DeviceConfig) {
			dc.Timeout = timeout
		}).Devices[0])
	}
	src := mustNew(t, cfg)
	rec := newRecorder()
	stop := startSource(t, src, rec)

	// The host may be busy with other work (CI, parallel builds), which
	// delays every goroutine alike. So up to three windows of 20 cycles are
	// measured and one within bounds passes. The dead device fails and
	// reconnects every ~0.6 s, so each window overlaps its failures: a
	// coupling would show in all of them.
	var all [][]model.Sample
	passed := false
	for w := 0; w < 3 && !passed; w++ {
		all = rec.waitFor(t, 10*time.Second, "a window of healthy cycles", func(b [][]model.Sample) bool {
			return len(batchesFor(b, "test/healthy/")) >= (w+1)*(cycles+1) && len(batchesFor(b, "test/dead/")) > 0
		})
		hb := batchesFor(all, "test/healthy/")[w*(cycles+1) : (w+1)*(cycles+1)]
		t0 := time.Duration(hb[0][0].SourceTime)
		var worst time.Duration
		for i, b := range hb {
			if !b[0].Quality.IsGood() {
				t.Fatalf("healthy cycle %d: %v", i, b)
			}
			worst = max(worst, time.Duration(b[0].SourceTime)-t0-time.Duration(i)*interval)
		}
		total := time.Duration(hb[cycles][0].SourceTime) - t0
		passed = total <= cycles*interval*105/100 && worst <= interval/2
		t.Logf("window %d: healthy did %d cycles in %v (ideal %v, limit +5%%), worst single delay %v (limit %v); pass=%v",
			w, cycles, total, cycles*interval, worst, interval/2, passed)
	}
	stop()
	if !passed {
		t.Errorf("the healthy device was delayed by more than 5%% in every window (see log)")
	}

	db := batchesFor(all, "test/dead/")
	if len(db) != 1 || db[0][0].Quality.Reason != model.ReasonTimeout {
		t.Errorf("dead device batches %v, want one with reason timeout", db)
	}
	for _, b := range batchesFor(all, "test/late/") {
		if !b[0].Quality.IsGood() {
			t.Errorf("late device sample %v", b[0])
		}
	}
	st := src.Status()
	byName := map[string]map[string]uint64{}
	for _, c := range st.Children {
		byName[c.Name] = c.Counters
	}
	if byName["late"]["poll_overruns"] == 0 {
		t.Errorf("late device (cycle longer than its interval) counted no overruns")
	}
	if len(batchesFor(all, "test/late/")) == 0 {
		t.Error("late device produced nothing")
	}
}

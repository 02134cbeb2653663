package hub_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/fleet/hub/hubtest"
)

// TestMeasurePublish1000 (WEIR_MEASURE=1): the time a base publish takes
// to sign and store the bundles of 1,000 registered sites, and the time
// for a group layer affecting half of them.
func TestMeasurePublish1000(t *testing.T) {
	if os.Getenv("WEIR_MEASURE") != "1" {
		t.Skip("WEIR_MEASURE=1 runs the measurement")
	}
	h := hubtest.Start(t)
	ctx := ctxT(t)
	const n = 1000
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := h.SetGroups(ctx, fmt.Sprintf("s%04d", i), []string{[]string{"even", "odd"}[i%2]}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("register %d sites: %v", n, time.Since(start))
	start = time.Now()
	res, err := h.Publish(ctx, ref(t, "base"), readLayer(t, "base.yaml"))
	if err != nil || len(res.Versions) != n {
		t.Fatalf("%d versions, %v", len(res.Versions), err)
	}
	t.Logf("base publish to %d sites: %v", n, time.Since(start))
	start = time.Now()
	res, err = h.Publish(ctx, ref(t, "group:even"), []byte("log:\n  level: debug\n"))
	if err != nil || len(res.Versions) != n/2 {
		t.Fatalf("%d versions, %v", len(res.Versions), err)
	}
	t.Logf("group publish to %d sites: %v", n/2, time.Since(start))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// Enrolment as the agent does it (a token, then a request over the
	// enrolment creds on a fresh connection), for 100 of them.
	start = time.Now()
	for i := 0; i < 100; i++ {
		site := fmt.Sprintf("e%03d", i)
		if _, err := h.EnrollWith(site, h.Token(t, site)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("token + enrolment, 100 sites: %v", time.Since(start))
	t.Logf("heap in use after: %d MiB (hub and embedded NATS in one process)", ms.HeapInuse>>20)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") || strings.HasPrefix(l, "VmRSS:") {
				t.Logf("test process (hub + embedded NATS + test): %s", strings.Join(strings.Fields(l), " "))
			}
		}
	}
}

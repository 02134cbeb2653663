package sparkplug

import (
	"testing"

	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// TestReportByException: by default a DDATA carries only metrics whose
// value or quality changed since the last one published (alias only, seq
// continuing); a batch of nothing but unchanged values publishes nothing
// and is still acknowledged; the first value after a birth — including a
// rebirth — is always sent. report_by_exception: false sends every sample.
func TestReportByException(t *testing.T) {
	good := func(path string, v int64, seq uint64) model.Sample { return sample(path, model.Int(v), seq) }
	uncertain := func(path string, v int64, seq uint64) model.Sample {
		s := good(path, v, seq)
		s.Quality = model.Quality{Code: model.Uncertain, Reason: "stale"}
		return s
	}
	// Each step writes a batch and names the weir_seq of the metrics the
	// DDATA it causes must carry (nil: no DDATA).
	type step struct {
		batch   []model.Sample
		rebirth bool // ask for a rebirth before writing
		want    []uint64
	}
	steps := func(rbe bool) []step {
		pick := func(changed, all []uint64) []uint64 {
			if rbe {
				return changed
			}
			return all
		}
		return []step{
			{batch: []model.Sample{good("d1/a", 1, 1), good("d1/b", 2, 2)}, want: []uint64{1, 2}},
			{batch: []model.Sample{good("d1/a", 1, 3), good("d1/b", 3, 4)}, want: pick([]uint64{4}, []uint64{3, 4})},
			{batch: []model.Sample{good("d1/a", 1, 5), good("d1/a", 1, 6), good("d1/b", 3, 7)}, want: pick(nil, []uint64{5, 6, 7})},
			{batch: []model.Sample{uncertain("d1/a", 1, 8), uncertain("d1/a", 1, 9)}, want: pick([]uint64{8}, []uint64{8, 9})},
			{batch: []model.Sample{uncertain("d1/a", 1, 10), good("d1/b", 3, 11)}, rebirth: true, want: []uint64{10, 11}},
		}
	}
	for _, rbe := range []bool{true, false} {
		name := "report_by_exception"
		if !rbe {
			name = "every_sample"
		}
		t.Run(name, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			cfg := testCfg(t, b, Version311)
			cfg.ReportByException = &rbe
			g := cfg.GroupID
			s := newSink(t, cfg)
			if err := s.Connect(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			ddata, nbirths := 0, 1
			var want [][]uint64 // per DDATA expected
			for i, st := range steps(rbe) {
				if st.rebirth {
					b.Publish(t, "spBv1.0/"+g+"/NCMD/E1", rebirthCmd(t), 1, false)
					nbirths++
					b.WaitFor(t, wait, "rebirth", hasN(nbirths, sparkplugb.NBIRTH)(t, g))
				}
				if err := s.Write(ctxT(t), st.batch); err != nil {
					t.Fatalf("step %d: Write = %v (an unchanged sample must still be acknowledged)", i, err)
				}
				if st.want != nil {
					ddata++
					want = append(want, st.want)
				}
			}
			// A final changed value: when its DDATA is there, every earlier
			// message is too (one connection, in order).
			if err := s.Write(ctxT(t), []model.Sample{good("d1/b", 99, 100)}); err != nil {
				t.Fatal(err)
			}
			ddata++
			want = append(want, []uint64{100})
			msgs := sparkplugMsgs(t, b.WaitFor(t, wait, "last DDATA", hasN(ddata, sparkplugb.DDATA)(t, g)), g, "E1")
			births := ofType(msgs, sparkplugb.DBIRTH)
			aliases := map[uint64]bool{}
			for _, m := range births[len(births)-1].payload.Metrics {
				aliases[m.GetAlias()] = true
			}
			data := ofType(msgs, sparkplugb.DDATA)
			if len(data) != len(want) {
				t.Fatalf("%d DDATA, want %d", len(data), len(want))
			}
			for i, d := range data {
				var seqs []uint64
				for _, m := range d.payload.Metrics {
					if m.Name != nil || !aliases[m.GetAlias()] {
						t.Errorf("DDATA %d: metric %q alias %d, want alias only", i, m.GetName(), m.GetAlias())
					}
					p := sparkplugb.Property(m, PropSeq)
					if p == nil {
						t.Fatalf("DDATA %d: no %s property", i, PropSeq)
					}
					seqs = append(seqs, p.GetLongValue())
				}
				if !equalSeqs(seqs, want[i]) {
					t.Errorf("DDATA %d carries samples %v, want %v", i, seqs, want[i])
				}
			}
			// Seq runs on without gaps: suppressed samples publish nothing.
			for i := 1; i < len(msgs); i++ {
				if ty := msgs[i].topic.Type; ty == sparkplugb.NBIRTH || msgs[i-1].topic.Type == sparkplugb.NDEATH {
					continue
				}
				if got, prev := msgs[i].payload.GetSeq(), msgs[i-1].payload.GetSeq(); got != (prev+1)%256 {
					t.Errorf("%s seq %d after %d", msgs[i].raw, got, prev)
				}
			}
			unchanged := s.Status().Counters["unchanged_samples"]
			if wantN := map[bool]uint64{true: 5, false: 0}[rbe]; unchanged != wantN {
				t.Errorf("unchanged_samples = %d, want %d", unchanged, wantN)
			}
		})
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

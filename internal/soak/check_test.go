package soak

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weir-edge/weir/internal/sparkplugb"
)

func TestChecker(t *testing.T) {
	type obs struct {
		tag string
		id  uint64
	}
	tests := []struct {
		name      string
		runs      []RunInfo
		obs       []obs
		lost      int
		excused   int
		dups      int
		order     int
		stray     int
		delivered int
		failed    string   // part of Failed(), "" for a pass
		dead      []uint64 // ids read from the dead-letter store; nil: not read
	}{
		{name: "contiguous runs, the tail after the reading missing",
			runs: []RunInfo{{FirstSeq: 100, Accepted: 2}, {FirstSeq: 200, Accepted: 3}},
			obs:  []obs{{"a", 100}, {"b", 101}, {"a", 102}, {"a", 200}, {"b", 201}, {"a", 202}},
			// 103.. were never accepted as far as the harness knows.
			delivered: 6},
		{name: "an accepted sample missing is lost",
			runs: []RunInfo{{FirstSeq: 100, Accepted: 4}},
			obs:  []obs{{"a", 100}, {"a", 101}, {"a", 103}},
			lost: 1, delivered: 3, failed: "1 accepted samples lost (first: run 0, id 102)"},
		{name: "a gap below a delivered id is lost even beyond the reading",
			runs: []RunInfo{{FirstSeq: 100, Accepted: 1}},
			obs:  []obs{{"a", 100}, {"a", 102}},
			lost: 1, delivered: 2, failed: "lost"},
		{name: "accepted but nothing delivered",
			runs: []RunInfo{{FirstSeq: 100, Accepted: 3}, {FirstSeq: 200}},
			obs:  []obs{{"a", 200}},
			lost: 3, delivered: 1, failed: "first: run 0, id 100"},
		{name: "a redelivery is a duplicate, not a violation",
			runs: []RunInfo{{FirstSeq: 100, Accepted: 3}},
			obs:  []obs{{"a", 100}, {"a", 101}, {"a", 100}, {"a", 101}, {"a", 102}},
			dups: 2, delivered: 3},
		{name: "a new id below the tag's highest is an order violation",
			runs:  []RunInfo{{FirstSeq: 100, Accepted: 3}},
			obs:   []obs{{"a", 100}, {"a", 102}, {"a", 101}},
			order: 1, delivered: 3, failed: "1 order violations"},
		{name: "order is per tag",
			runs:      []RunInfo{{FirstSeq: 100, Accepted: 3}},
			obs:       []obs{{"a", 101}, {"b", 100}, {"a", 102}},
			delivered: 3},
		{name: "poison published in the run excuses a gap",
			runs:    []RunInfo{{FirstSeq: 100, Accepted: 4, Poison: 1}},
			obs:     []obs{{"a", 100}, {"a", 101}, {"a", 103}},
			excused: 1, delivered: 3},
		{name: "poison excuses no more gaps than were poisoned",
			runs: []RunInfo{{FirstSeq: 100, Accepted: 5, Poison: 1}},
			obs:  []obs{{"a", 100}, {"a", 102}, {"a", 104}},
			lost: 1, excused: 1, delivered: 3, failed: "lost"},
		{name: "once the dead letters are read, only a dead-lettered id is excused",
			runs: []RunInfo{{FirstSeq: 100, Accepted: 5, Poison: 2}},
			obs:  []obs{{"a", 100}, {"a", 102}, {"a", 104}},
			dead: []uint64{103, 999},
			lost: 1, excused: 1, delivered: 3, failed: "first: run 0, id 101"},
		{name: "dead-lettered ids excuse their gaps whatever the poison count",
			runs:    []RunInfo{{FirstSeq: 100, Accepted: 4}},
			obs:     []obs{{"a", 100}, {"a", 103}},
			dead:    []uint64{101, 102},
			excused: 2, delivered: 2},
		{name: "ids before the first run are stray",
			runs:  []RunInfo{{FirstSeq: 100, Accepted: 1}},
			obs:   []obs{{"a", 5}, {"a", 100}},
			stray: 1, delivered: 2, failed: "belong to no run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker()
			for _, r := range tt.runs {
				c.AddRun(r)
			}
			for _, o := range tt.obs {
				c.Observe(o.tag, o.id)
			}
			if tt.dead != nil {
				c.DeadLettered(tt.dead)
			}
			r := c.Result()
			if r.Lost != tt.lost || r.Excused != tt.excused || r.DuplicateCount() != tt.dups ||
				r.OrderViolations() != tt.order || r.Stray != tt.stray || r.Delivered != tt.delivered {
				t.Errorf("lost %d excused %d dups %d order %d stray %d delivered %d; want %d %d %d %d %d %d",
					r.Lost, r.Excused, r.DuplicateCount(), r.OrderViolations(), r.Stray, r.Delivered,
					tt.lost, tt.excused, tt.dups, tt.order, tt.stray, tt.delivered)
			}
			got := r.Failed()
			if (tt.failed == "") != (got == "") || !strings.Contains(got, tt.failed) {
				t.Errorf("Failed() = %q, want it to say %q", got, tt.failed)
			}
		})
	}
}

func TestSumKey(t *testing.T) {
	doc := map[string]any{
		"dead_lettered": 2.0,
		"sink":          map[string]any{"dead_lettered": map[string]any{"invalid_topic": 3.0, "oversize": 1.0}},
		"list":          []any{map[string]any{"dead_lettered": 4.0}, "x"},
		"other":         7.0,
	}
	if got := sumKey(doc, "dead_lettered"); got != 10 {
		t.Fatalf("sumKey = %v, want 10", got)
	}
}

func TestPoisonPayload(t *testing.T) {
	b, err := poisonPayload(7)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sparkplugb.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if m := sparkplugb.FindMetric(p, poisonMetric); m == nil || utf8.ValidString(m.GetName()) {
		t.Errorf("no metric with a name that is not UTF-8: %v", m)
	}
	if m := sparkplugb.FindMetric(p, "oversize"); m == nil || len(m.GetStringValue()) <= maxPacket {
		t.Errorf("no metric larger than the broker's maximum packet (%d bytes)", maxPacket)
	}
	if sparkplugb.FindMetric(p, "good") == nil || sparkplugb.FindMetric(p, sparkplugb.MetricBdSeq) == nil {
		t.Error("the good metric or bdSeq is missing")
	}
}

package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sinks/historian"
)

// fillHistorian writes a few samples through a real historian sink under
// dataDir/historian and closes it, as a stopped gateway leaves it.
func fillHistorian(t *testing.T, dataDir string, base time.Time) {
	t.Helper()
	sk, err := historian.New(historian.Config{DataDir: dataDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sk.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	at := func(s int) int64 { return base.Add(time.Duration(s) * time.Second).UnixNano() }
	batch := []model.Sample{
		{Path: "plant/line1/speed", Value: model.Float(1.5), SourceTime: at(0), EdgeTime: at(0)},
		{Path: "plant/line1/speed", Value: model.Float(2.5), SourceTime: at(1), EdgeTime: at(1), Quality: model.Quality{Code: model.Bad, Reason: "comm, lost"}},
		{Path: "plant/line1/state", Value: model.String("run"), SourceTime: at(0), EdgeTime: at(0)},
		{Path: "plant/line2/speed", Value: model.Int(7), SourceTime: at(2), EdgeTime: at(2)},
	}
	if err := sk.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := sk.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHistoryExport(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	fillHistorian(t, dir, base)
	ts := func(s int) string { return base.Add(time.Duration(s) * time.Second).Format(time.RFC3339Nano) }
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"csv", []string{dir}, "time,tag,value,quality,reason\n" +
			ts(0) + ",plant/line1/speed,1.5,good,\n" +
			ts(1) + ",plant/line1/speed,2.5,bad,\"comm, lost\"\n" +
			ts(0) + ",plant/line1/state,run,good,\n" +
			ts(2) + ",plant/line2/speed,7,good,\n"},
		{"jsonl tag from", []string{"-format", "jsonl", "-tag", "plant/*/speed", "-from", ts(1), dir},
			`{"time":"` + ts(1) + `","tag":"plant/line1/speed","value":2.5,"quality":"bad","reason":"comm, lost"}` + "\n" +
				`{"time":"` + ts(2) + `","tag":"plant/line2/speed","value":7,"quality":"good"}` + "\n"},
		{"to, historian dir", []string{"-format", "jsonl", "-tag", "plant/line1/*", "-to", ts(1), dir + "/historian"},
			`{"time":"` + ts(0) + `","tag":"plant/line1/speed","value":1.5,"quality":"good"}` + "\n" +
				`{"time":"` + ts(0) + `","tag":"plant/line1/state","value":"run","quality":"good"}` + "\n"},
		{"mqtt filter #", []string{"-format", "jsonl", "-tag", "plant/line1/#", "-to", ts(1), dir},
			`{"time":"` + ts(0) + `","tag":"plant/line1/speed","value":1.5,"quality":"good"}` + "\n" +
				`{"time":"` + ts(0) + `","tag":"plant/line1/state","value":"run","quality":"good"}` + "\n"},
		{"mqtt filter +", []string{"-format", "jsonl", "-tag", "plant/+/speed", "-from", ts(1), dir},
			`{"time":"` + ts(1) + `","tag":"plant/line1/speed","value":2.5,"quality":"bad","reason":"comm, lost"}` + "\n" +
				`{"time":"` + ts(2) + `","tag":"plant/line2/speed","value":7,"quality":"good"}` + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(append([]string{"history", "export"}, c.args...)...)
			if code != 0 || out != c.want {
				t.Fatalf("exit %d, stderr %q\ngot:\n%s\nwant:\n%s", code, errOut, out, c.want)
			}
		})
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad format", []string{"-format", "xml", dir}, 2, "-format must be csv or jsonl"},
		{"bad from", []string{"-from", "yesterday", dir}, 2, "-from must be an RFC 3339 time"},
		{"reversed", []string{"-from", ts(2), "-to", ts(1), dir}, 2, "-from must be before -to"},
		{"bad pattern", []string{"-tag", "[", dir}, 2, "-tag"},
		{"bad filter", []string{"-tag", "plant/#/x", dir}, 2, "'#' must be the last level"},
		{"filter and glob", []string{"-tag", "plant/*/#", dir}, 2, "not both"},
		{"matches nothing", []string{"-tag", "x/#", dir}, 1, `-tag "x/#" matches none of the historian's`},
		{"no historian", []string{t.TempDir()}, 1, "no historian here"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(append([]string{"history", "export"}, c.args...)...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d %q, want %d with %q", code, errOut, c.code, c.want)
			}
		})
	}
}

// exportTag neither loses nor repeats samples across pages.
func TestExportTagPaging(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 120,000 samples")
	}
	dir := t.TempDir()
	sk, err := historian.New(historian.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sk.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer sk.Close(ctx)
	base := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour).UnixNano()
	const n = historyPage*2 + 20_000
	batch := make([]model.Sample, n)
	for i := range batch {
		ts := base + int64(i)*int64(time.Millisecond)
		batch[i] = model.Sample{Path: "a", Value: model.Int(int64(i)), SourceTime: ts, EdgeTime: ts}
	}
	if err := sk.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var got []int64
	if err := exportTag(ctx, sk.Store(), "a", 0, 1<<63-1, func(s model.Sample) error { got = append(got, s.Value.AsInt()); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d samples, want %d", len(got), n)
	}
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("sample %d is %d", i, v)
		}
	}
}

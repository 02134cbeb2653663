package config

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sinks/historian"
)

// A historian sink built from the configuration writes its day files
// under <data_dir>/historian by default.
func TestBuildHistorianSink(t *testing.T) {
	dataDir := t.TempDir()
	yaml := "data_dir: " + dataDir + "\n" + nodeTestSource +
		"sinks:\n  - name: history\n    buffer: {type: memory}\n    historian: {retention: 30d}\n"
	cfg, err := Parse("h.yaml", []byte(yaml), noEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	opts, err := cfg.Build(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	sink, ok := opts.Sinks[0].Sink.(*historian.Sink)
	if !ok {
		t.Fatalf("sink is %T, want *historian.Sink", opts.Sinks[0].Sink)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sink.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer sink.Close(context.Background())
	now := time.Now().UnixNano()
	if err := sink.Write(ctx, []model.Sample{{Path: "plant/d/t", Value: model.Float(1.5), SourceTime: now, Seq: 1}}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dataDir, "historian", "*.db"))
	if len(files) != 1 {
		entries, _ := os.ReadDir(dataDir)
		t.Fatalf("day files %v under %s/historian (data_dir holds %v)", files, dataDir, entries)
	}
}

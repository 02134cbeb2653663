package sim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/conf/conftest"
)

func decodeStrict(t *testing.T, data string) (Config, error) {
	return conftest.DecodeErr[Config](data)
}

func TestSampleConfig(t *testing.T) {
	c, err := decodeStrict(t, SampleConfig)
	if err != nil {
		t.Fatalf("decode sample.yaml: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	want := Config{Listen: "127.0.0.1:5020", Seed: 1, Step: 100 * time.Millisecond, FaultMTBF: 20 * time.Minute,
		AutoRestart: 30 * time.Second, MaxClients: 64, Bench: BenchConfig{Tags: 100}}
	if c != want {
		t.Errorf("sample decoded to %+v, want %+v", c, want)
	}
}

func TestZeroConfigIsValid(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaulted config: %v", err)
	}
	if c.Listen != DefaultListen || c.Step != DefaultStep || c.Bench.Tags != DefaultBenchTags {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// TestBadConfigs pairs each testdata/*.bad.yaml with the messages in its
// .err file, one per line, all of which must appear.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wantB, err := os.ReadFile(strings.TrimSuffix(f, ".bad.yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			c, err := decodeStrict(t, string(data))
			if err == nil {
				err = c.Validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, line := range bytes.Split(bytes.TrimSpace(wantB), []byte("\n")) {
				if !strings.Contains(err.Error(), string(line)) {
					t.Errorf("error lacks %q:\n%v", line, err)
				}
			}
		})
	}
	t.Run("field errors carry paths", func(t *testing.T) {
		c := Config{UnitID: -1, Bench: BenchConfig{Devices: -1}}
		var fe *conf.FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Path != "unit_id" {
			t.Errorf("first error %v, want a FieldError at unit_id", err)
		}
	})
}

func TestSimStartAndClose(t *testing.T) {
	cfg := Config{Listen: "127.0.0.1:0", Seed: 3, UnitID: 1, StartStopped: true, Bench: BenchConfig{Devices: 2, Tags: 20}}
	s, err := New(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" {
		t.Error("New bound an address")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	c := dial(t, s.Addr())
	if on, err := c.ReadCoil(0); err != nil || on {
		t.Errorf("run_cmd = %v, %v; want false (start_stopped)", on, err)
	}
	if got := len(s.BenchAddrs()); got != 2 {
		t.Fatalf("%d bench servers, want 2", got)
	}
	bc := dial(t, s.BenchAddrs()[1])
	if _, err := bc.ReadRegisters(0, 20, modbus.HOLDING_REGISTER); err != nil {
		t.Errorf("bench read: %v", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, Config{Listen: "127.0.0.1:0"}, quietLog()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := Run(context.Background(), Config{Step: -1}, quietLog()); err == nil {
		t.Fatal("Run accepted an invalid config")
	}
}

package modbus

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestStaggerSpreadsDevicesOverTheInterval(t *testing.T) {
	devs := func(n int) []DeviceConfig {
		var out []DeviceConfig
		for i := range n {
			out = append(out, DeviceConfig{
				Name: fmt.Sprintf("d%d", i), Address: "127.0.0.1:1", Namespace: fmt.Sprintf("a/d%d", i),
				Groups: []GroupConfig{{Interval: time.Second, Tags: []TagConfig{{Name: "t", Table: "holding", Type: "uint16"}}}},
			})
		}
		return out
	}
	off := false
	for _, tc := range []struct {
		name    string
		stagger *bool
		want    []float64
	}{
		{"default on", nil, []float64{0, 0.25, 0.5, 0.75}},
		{"off: all at once", &off, []float64{0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := New(Config{Devices: devs(4), Stagger: tc.stagger}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []float64
			for _, d := range src.devices {
				got = append(got, d.phase)
				d.client.Close()
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("phases %v, want %v", got, tc.want)
			}
		})
	}
}

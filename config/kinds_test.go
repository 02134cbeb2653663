package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Every block field of Source, Processor and Sink has its row, and every
// row finds its own field: the tables and the structs cannot drift apart.
func TestKindRowsMatchFields(t *testing.T) {
	check := func(t *testing.T, typ reflect.Type, keys []string, kindOf func(v reflect.Value) string) {
		var fields []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
				continue // name, batch_size, buffer
			}
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if typ == reflect.TypeOf(Sink{}) && key == "route" {
				continue // a sink's route is not its kind
			}
			fields = append(fields, key)
			v := reflect.New(typ)
			v.Elem().Field(i).Set(reflect.New(f.Type.Elem()))
			if got := kindOf(v); got != key {
				t.Errorf("%s with only field %s set: row %q, want %q", typ.Name(), f.Name, got, key)
			}
		}
		slices.Sort(fields)
		keys = slices.Clone(keys)
		slices.Sort(keys)
		if !slices.Equal(fields, keys) {
			t.Errorf("%s: block fields %v, rows %v", typ.Name(), fields, keys)
		}
	}
	t.Run("sources", func(t *testing.T) {
		check(t, reflect.TypeOf(Source{}), rowKeys(sourceRows), func(v reflect.Value) string { return kindOf(sourceRows, v.Interface().(*Source)) })
	})
	t.Run("processors", func(t *testing.T) {
		check(t, reflect.TypeOf(Processor{}), rowKeys(processorRows), func(v reflect.Value) string { return kindOf(processorRows, v.Interface().(*Processor)) })
	})
	t.Run("sinks", func(t *testing.T) {
		check(t, reflect.TypeOf(Sink{}), rowKeys(sinkRows), func(v reflect.Value) string { return kindOf(sinkRows, v.Interface().(*Sink)) })
	})
}

func rowKeys[C, R any](rows []kindRow[C, R]) []string {
	var keys []string
	for _, r := range rows {
		keys = append(keys, r.key)
	}
	return keys
}

// The messages list the kinds as they always did.
func TestKindLists(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{kindList(sourceRows), "modbus, opcua or mqtt"},
		{kindList(processorRows), "scale, deadband, rate, window, derive, rename or downsample"},
		{kindList(sinkRows), "mqtt, sparkplug, nats, kafka, http, postgres or historian"},
	} {
		if tc.got != tc.want {
			t.Errorf("kind list %q, want %q", tc.got, tc.want)
		}
	}
}

package sparkplugb

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/model"
)

func dsTypes(dts ...DataType) []uint32 {
	out := make([]uint32, len(dts))
	for i, dt := range dts {
		out[i] = uint32(dt)
	}
	return out
}

// TestDataSetRoundTrip: rows written with AppendDataSetRow come back as
// one typed array per column, integers sign-extended by width.
func TestDataSetRoundTrip(t *testing.T) {
	types := []DataType{DataType_Int8, DataType_Int32, DataType_Int64, DataType_UInt16, DataType_UInt64, DataType_Float,
		DataType_Double, DataType_Boolean, DataType_String, DataType_DateTime}
	names := []string{"i8", "i32", "i64", "u16", "u64", "f", "d", "b", "s", "t"}
	rows := [][]model.Value{
		{model.Int(-128), model.Int(math.MinInt32), model.Int(math.MinInt64), model.Uint(65535), model.Uint(math.MaxUint64),
			model.Float(0.5), model.Float(math.Pi), model.Bool(true), model.String("a"), model.Int(1732568400123)},
		{model.Int(127), model.Int(7), model.Int(-1), model.Uint(0), model.Uint(1), model.Float(-2), model.Float(0),
			model.Bool(false), model.String(""), model.Int(0)},
	}
	ds := &DataSet{NumOfColumns: proto.Uint64(uint64(len(names))), Columns: names, Types: dsTypes(types...)}
	for _, r := range rows {
		if err := AppendDataSetRow(ds, r...); err != nil {
			t.Fatal(err)
		}
	}
	b, err := proto.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	back := &DataSet{}
	if err := proto.Unmarshal(b, back); err != nil {
		t.Fatal(err)
	}
	cols, err := DataSetColumns(back)
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != len(names) {
		t.Fatalf("%d columns", len(cols))
	}
	for j, c := range cols {
		want := model.Array([]model.Value{rows[0][j], rows[1][j]})
		if c.Name != names[j] || c.Type != types[j] || !c.Values.Equal(want) {
			t.Errorf("column %d: %s %s %#v, want %s %s %#v", j, c.Name, c.Type, c.Values, names[j], types[j], want)
		}
	}
}

// TestDataSetColumnsLenient: integers in either field, floats in either
// field, no rows at all.
func TestDataSetColumnsLenient(t *testing.T) {
	ds := &DataSet{Columns: []string{"u32", "f"}, Types: dsTypes(DataType_UInt32, DataType_Float), Rows: []*Payload_DataSet_Row{
		{Elements: []*DataSetValue{
			{Value: &Payload_DataSet_DataSetValue_LongValue{LongValue: math.MaxUint32}},
			{Value: &Payload_DataSet_DataSetValue_DoubleValue{DoubleValue: 1.25}},
		}},
	}}
	cols, err := DataSetColumns(ds)
	if err != nil {
		t.Fatal(err)
	}
	if !cols[0].Values.Equal(uints(math.MaxUint32)) || !cols[1].Values.Equal(floats(1.25)) {
		t.Fatalf("got %#v", cols)
	}
	empty, err := DataSetColumns(&DataSet{Columns: []string{"a"}, Types: dsTypes(DataType_Int32)})
	if err != nil || len(empty) != 1 || empty[0].Values.Kind() != model.KindArray || len(empty[0].Values.Elems()) != 0 {
		t.Fatalf("no rows: %#v, %v", empty, err)
	}
}

// TestDataSetColumnsErrors: every malformed table is refused with a
// message that says what is wrong.
func TestDataSetColumnsErrors(t *testing.T) {
	i32 := func(v uint32) *DataSetValue {
		return &DataSetValue{Value: &Payload_DataSet_DataSetValue_IntValue{IntValue: v}}
	}
	str := func(s string) *DataSetValue {
		return &DataSetValue{Value: &Payload_DataSet_DataSetValue_StringValue{StringValue: s}}
	}
	row := func(el ...*DataSetValue) *Payload_DataSet_Row { return &Payload_DataSet_Row{Elements: el} }
	many := make([]*Payload_DataSet_Row, MaxDataSetElems/2+1)
	for i := range many {
		many[i] = row(i32(1), i32(2))
	}
	tests := []struct {
		name string
		ds   *DataSet
		want string
	}{
		{"num_of_columns", &DataSet{NumOfColumns: proto.Uint64(3), Columns: []string{"a"}, Types: dsTypes(DataType_Int32)}, "num_of_columns 3"},
		{"types count", &DataSet{Columns: []string{"a", "b"}, Types: dsTypes(DataType_Int32)}, "1 types for 2 columns"},
		{"empty name", &DataSet{Columns: []string{""}, Types: dsTypes(DataType_Int32)}, "no name"},
		{"duplicate", &DataSet{Columns: []string{"a", "a"}, Types: dsTypes(DataType_Int32, DataType_Int32)}, "duplicate column"},
		{"column type", &DataSet{Columns: []string{"a"}, Types: dsTypes(DataType_Template)}, "unsupported datatype Template"},
		{"row too short", &DataSet{Columns: []string{"a", "b"}, Types: dsTypes(DataType_Int32, DataType_Int32),
			Rows: []*Payload_DataSet_Row{row(i32(1), i32(2)), row(i32(1))}}, "row 1 has 1 elements, want 2"},
		{"row too long", &DataSet{Columns: []string{"a"}, Types: dsTypes(DataType_Int32),
			Rows: []*Payload_DataSet_Row{row(i32(1), i32(2))}}, "want 1"},
		{"type mismatch", &DataSet{Columns: []string{"a", "b"}, Types: dsTypes(DataType_Int32, DataType_Boolean),
			Rows: []*Payload_DataSet_Row{row(i32(1), str("x"))}}, `row 0 column "b"`},
		{"null cell", &DataSet{Columns: []string{"a"}, Types: dsTypes(DataType_Int32),
			Rows: []*Payload_DataSet_Row{row(&DataSetValue{})}}, `column "a"`},
		{"too many cells", &DataSet{Columns: []string{"a", "b"}, Types: dsTypes(DataType_Int32, DataType_Int32), Rows: many},
			"exceed the limit"},
		{"too many columns", &DataSet{Columns: make([]string, MaxDataSetElems+1), Types: make([]uint32, MaxDataSetElems+1)},
			"exceed the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DataSetColumns(tt.ds)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestIsTemplateDefinition(t *testing.T) {
	def := &Metric{Value: &Payload_Metric_TemplateValue{TemplateValue: &Template{IsDefinition: proto.Bool(true)}}}
	inst := &Metric{Value: &Payload_Metric_TemplateValue{TemplateValue: &Template{TemplateRef: proto.String("Motor")}}}
	if !IsTemplateDefinition(def) || IsTemplateDefinition(inst) || IsTemplateDefinition(&Metric{}) {
		t.Fatal("IsTemplateDefinition")
	}
}

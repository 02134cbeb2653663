package sparkplugb

import (
	"fmt"

	"github.com/weir-edge/weir/model"
)

// Shorter names for the generated messages of the complex datatypes.
type (
	// Template is a Template metric's value: a definition (a UDT type) or
	// an instance of one, whose member metrics are the instance's values.
	Template = Payload_Template
	// DataSet is a DataSet metric's value: a table with typed columns.
	DataSet = Payload_DataSet
	// DataSetValue is one element (cell) of a DataSet row.
	DataSetValue = Payload_DataSet_DataSetValue
)

// MaxDataSetElems bounds the cells (rows × columns) DataSetColumns
// converts: a payload of a few megabytes could otherwise describe millions
// of empty cells, each costing a model.Value.
const MaxDataSetElems = 100_000

// IsTemplateDefinition reports whether m carries a Template definition
// (is_definition true, normally in NBIRTH): the description of a UDT type,
// which holds no data.
func IsTemplateDefinition(m *Metric) bool {
	return m.GetTemplateValue().GetIsDefinition()
}

// Column is one column of a DataSet: its values across all rows.
type Column struct {
	Name string
	Type DataType
	// Values is a model.Array with one element per row, of the kind the
	// column's Type maps to (see the package documentation).
	Values model.Value
}

// DataSetColumns converts a DataSet to its columns. The column count must
// agree between num_of_columns (when set), columns and types; every row
// must have one element per column, of the field the column type uses;
// column types are the scalar datatypes a DataSetValue can carry (integers,
// DateTime, Float, Double, Boolean, String, Text, UUID). Null cells (no
// value field) are refused: a model.Array holds values of one kind only.
// A nil DataSet has no columns.
func DataSetColumns(ds *DataSet) ([]Column, error) {
	names, types, rows := ds.GetColumns(), ds.GetTypes(), ds.GetRows()
	nc := len(names)
	if ds != nil && ds.NumOfColumns != nil && ds.GetNumOfColumns() != uint64(nc) {
		return nil, fmt.Errorf("dataset: num_of_columns %d but %d column names", ds.GetNumOfColumns(), nc)
	}
	if len(types) != nc {
		return nil, fmt.Errorf("dataset: %d types for %d columns", len(types), nc)
	}
	if cells := uint64(max(len(rows), 1)) * uint64(nc); cells > MaxDataSetElems {
		return nil, fmt.Errorf("dataset: %d rows × %d columns exceed the limit of %d cells", len(rows), nc, MaxDataSetElems)
	}
	cols := make([]Column, nc)
	seen := make(map[string]bool, nc)
	for j, name := range names {
		dt := DataType(types[j])
		switch {
		case name == "":
			return nil, fmt.Errorf("dataset: column %d has no name", j)
		case seen[name]:
			return nil, fmt.Errorf("dataset: duplicate column %q", name)
		case !dataSetType(dt):
			return nil, fmt.Errorf("dataset: column %q: unsupported datatype %s", name, dt)
		}
		seen[name] = true
		cols[j] = Column{Name: name, Type: dt}
	}
	cells := make([]model.Value, len(rows)*nc)
	for i, r := range rows {
		el := r.GetElements()
		if len(el) != nc {
			return nil, fmt.Errorf("dataset: row %d has %d elements, want %d", i, len(el), nc)
		}
		for j, e := range el {
			v, ok := dataSetValue(e, cols[j].Type)
			if !ok {
				return nil, fmt.Errorf("dataset: row %d column %q: %s needs another value than %T", i, cols[j].Name, cols[j].Type, e.GetValue())
			}
			cells[j*len(rows)+i] = v // column-major: each column one slice
		}
	}
	for j := range cols {
		cols[j].Values = model.Array(cells[j*len(rows) : (j+1)*len(rows) : (j+1)*len(rows)])
	}
	return cols, nil
}

func dataSetType(dt DataType) bool {
	return dt >= DataType_Int8 && dt <= DataType_UUID
}

// dataSetValue converts one cell, as leniently as ValueAs: an integer type
// is read from int_value or long_value, Float and Double from either float
// field.
func dataSetValue(e *DataSetValue, dt DataType) (model.Value, bool) {
	switch x := e.GetValue().(type) {
	case *Payload_DataSet_DataSetValue_IntValue:
		if isInt(dt) {
			return intAs(uint64(x.IntValue), dt), true
		}
	case *Payload_DataSet_DataSetValue_LongValue:
		if isInt(dt) {
			return intAs(x.LongValue, dt), true
		}
	case *Payload_DataSet_DataSetValue_FloatValue:
		if dt == DataType_Float || dt == DataType_Double {
			return model.Float(float64(x.FloatValue)), true
		}
	case *Payload_DataSet_DataSetValue_DoubleValue:
		if dt == DataType_Float || dt == DataType_Double {
			return model.Float(x.DoubleValue), true
		}
	case *Payload_DataSet_DataSetValue_BooleanValue:
		if dt == DataType_Boolean {
			return model.Bool(x.BooleanValue), true
		}
	case *Payload_DataSet_DataSetValue_StringValue:
		if dt == DataType_String || dt == DataType_Text || dt == DataType_UUID {
			return model.String(x.StringValue), true
		}
	}
	return model.Value{}, false
}

func isInt(dt DataType) bool {
	return (dt >= DataType_Int8 && dt <= DataType_UInt64) || dt == DataType_DateTime
}

// AppendDataSetRow appends a row to ds with one element per value, stored
// as the column's type (ds.Types must be set). It is the inverse of
// DataSetColumns, for tests and publishers.
func AppendDataSetRow(ds *DataSet, vals ...model.Value) error {
	if len(vals) != len(ds.GetTypes()) {
		return fmt.Errorf("dataset: %d values for %d columns", len(vals), len(ds.GetTypes()))
	}
	row := &Payload_DataSet_Row{Elements: make([]*DataSetValue, len(vals))}
	for j, v := range vals {
		var m Metric
		dt := DataType(ds.GetTypes()[j])
		if !dataSetType(dt) || !v.IsValid() {
			return fmt.Errorf("dataset: column %d: cannot store %s as %s", j, v.Kind(), dt)
		}
		if err := SetValue(&m, v, dt); err != nil {
			return err
		}
		e := &DataSetValue{}
		switch x := m.GetValue().(type) {
		case *Payload_Metric_IntValue:
			e.Value = &Payload_DataSet_DataSetValue_IntValue{IntValue: x.IntValue}
		case *Payload_Metric_LongValue:
			e.Value = &Payload_DataSet_DataSetValue_LongValue{LongValue: x.LongValue}
		case *Payload_Metric_FloatValue:
			e.Value = &Payload_DataSet_DataSetValue_FloatValue{FloatValue: x.FloatValue}
		case *Payload_Metric_DoubleValue:
			e.Value = &Payload_DataSet_DataSetValue_DoubleValue{DoubleValue: x.DoubleValue}
		case *Payload_Metric_BooleanValue:
			e.Value = &Payload_DataSet_DataSetValue_BooleanValue{BooleanValue: x.BooleanValue}
		case *Payload_Metric_StringValue:
			e.Value = &Payload_DataSet_DataSetValue_StringValue{StringValue: x.StringValue}
		}
		row.Elements[j] = e
	}
	ds.Rows = append(ds.Rows, row)
	return nil
}

// Package wiretest serves the tests of the API's edges, where the services
// convert their records into pkg/metalapi's wire types: Fill sets every
// field of a value, Unset names the fields a conversion left zero, so that
// a field added on either side and forgotten by a converter fails a test.
package wiretest

import (
	"reflect"
	"time"
)

// Time is the time Fill sets.
var Time = time.Date(2026, 12, 6, 14, 30, 5, 123456789, time.UTC)

// Fill sets every exported field of the value ptr points to, nested ones
// included, to something other than its zero, so that omitempty hides
// none of them.
func Fill(ptr any) { fill(reflect.ValueOf(ptr).Elem()) }

func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(Time))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // bytes: JSON in the records
			v.SetBytes([]byte(`{"x":1}`))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		if e.Kind() == reflect.Interface {
			e.Set(reflect.ValueOf("x"))
		} else {
			fill(e)
		}
		v.SetMapIndex(k, e)
	}
}

// Unset returns the exported fields of the struct v that hold their zero
// value (embedded structs' fields by their own names).
func Unset(v any) []string {
	var out []string
	unset(reflect.ValueOf(v), &out)
	return out
}

func unset(v reflect.Value, out *[]string) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		switch {
		case !f.IsExported():
		case f.Anonymous && f.Type.Kind() == reflect.Struct:
			unset(v.Field(i), out)
		case v.Field(i).IsZero():
			*out = append(*out, f.Name)
		}
	}
}

package config

import (
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// field binds one tagged Config field to text get/set, so flags, env and
// files share one list: the struct itself.
type field struct {
	v reflect.Value
}

func fields(c *Config) map[string]field {
	m := make(map[string]field)
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		if k := rt.Field(i).Tag.Get("key"); k != "" {
			m[k] = field{rv.Field(i)}
		}
	}
	return m
}

func fieldOrder(c *Config) []string {
	var keys []string
	rt := reflect.TypeOf(c).Elem()
	for i := 0; i < rt.NumField(); i++ {
		if k := rt.Field(i).Tag.Get("key"); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

var durationType = reflect.TypeOf(time.Duration(0))

func (f field) set(s string) error {
	switch {
	case f.v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.v.SetInt(int64(d))
	case f.v.Kind() == reflect.String:
		f.v.SetString(s)
	case f.v.Kind() == reflect.Bool:
		b, err := parseBool(s)
		if err != nil {
			return err
		}
		f.v.SetBool(b)
	case f.v.Kind() == reflect.Int || f.v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.v.SetInt(n)
	default:
		return fmt.Errorf("unsupported setting type %s", f.v.Type())
	}
	return nil
}

func (f field) get() string {
	switch {
	case f.v.Type() == durationType:
		return time.Duration(f.v.Int()).String()
	default:
		return fmt.Sprint(f.v.Interface())
	}
}

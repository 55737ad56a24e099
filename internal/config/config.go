// Package config loads Slotway's YAML file: it rejects unknown keys with
// their line, decodes into the components' Config structs and reports
// validation errors with the field path and the line they come from.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is a bad value in one field. Field is a dotted path relative to
// the component that reports it; Prefix makes it absolute.
type FieldError struct {
	Field string
	Msg   string
	Line  int // filled in by Load when the field appears in the file
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Msg)
	}
	return e.Field + ": " + e.Msg
}

// Errorf returns a *FieldError for field.
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Prefix puts prefix+"." in front of the field of every FieldError in err.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	return mapFieldErrors(err, func(fe *FieldError) { fe.Field = prefix + "." + fe.Field },
		func(e error) error { return fmt.Errorf("%s: %w", prefix, e) })
}

// mapFieldErrors rewrites a copy of every FieldError in err with fe, and
// every other error with other.
func mapFieldErrors(err error, fe func(*FieldError), other func(error) error) error {
	var out []error
	for _, e := range flatten(err) {
		var f *FieldError
		if errors.As(e, &f) {
			c := *f
			fe(&c)
			out = append(out, &c)
			continue
		}
		out = append(out, other(e))
	}
	return errors.Join(out...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Validator is implemented by the top-level config.
type Validator interface{ Validate() error }

// Load reads path into dst (a pointer to a struct that already holds the
// defaults) and validates it. Every error names the file, the line and the
// field path.
func Load(path string, dst any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := Parse(data, dst); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Parse is Load for bytes already read.
func Parse(data []byte, dst any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return err
	}
	if len(root.Content) == 0 {
		return errors.New("empty file")
	}
	doc := root.Content[0]
	if err := checkKeys(doc, reflect.TypeOf(dst).Elem(), ""); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return err
	}
	v, ok := dst.(Validator)
	if !ok {
		return nil
	}
	err := v.Validate()
	if err == nil {
		return nil
	}
	return mapFieldErrors(err, func(fe *FieldError) { fe.Line = lineOf(doc, fe.Field) },
		func(e error) error { return e })
}

// checkKeys walks the YAML mapping against the struct's yaml tags and
// reports the first unknown key with its full path and line.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports the type error with its line
		}
		// Structs are walked even when they unmarshal themselves (to apply
		// defaults): their keys are still the yaml tags.
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: unknown key %s", k.Line, join(path, k.Value))
			}
			if err := checkKeys(v, ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, e := range n.Content {
				if err := checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// lineOf finds the line of a dotted path ("proxy.cluster.seeds[0]"); when
// the path is missing it returns the line of its deepest present parent.
func lineOf(doc *yaml.Node, path string) int {
	n := doc
	line := 0
	for part := range strings.SplitSeq(path, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

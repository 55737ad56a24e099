// Package config loads Slotway's YAML file: it rejects unknown keys with
// their line, decodes into the components' Config structs and reports
// validation errors with the field path and the line they come from.
package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

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

// Locate fills in the line of every FieldError in err from the YAML file
// data (as Parse does for Validate's errors), for checks made after
// loading; other errors pass unchanged.
func Locate(data []byte, err error) error {
	if err == nil {
		return nil
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return err
	}
	doc := root.Content[0]
	return mapFieldErrors(err, func(fe *FieldError) { fe.Line = lineOf(doc, fe.Field) },
		func(e error) error { return e })
}

// checkKeys walks the YAML tree against the struct's yaml tags and reports
// every unknown key with its full path and line, and every value that
// would not decode into its field's type with the path, what would parse
// and what the file has: "line 3: proxy.retry_timeout: want a duration
// such as 3s, got 3". The decoder's own messages name Go types, not keys.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	var errs []error
	walk(n, t, path, &errs, 0)
	return errors.Join(errs...)
}

// maxDepth bounds the walk: the config types nest a handful of levels.
const maxDepth = 32

func walk(n *yaml.Node, t reflect.Type, path string, errs *[]error, depth int) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if depth > maxDepth || n.Kind == yaml.AliasNode || isNull(n) {
		return
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode && !isTextUnmarshaler(t):
		// Structs are walked even when they unmarshal themselves (to apply
		// defaults): their keys are still the yaml tags.
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("line %d: unknown key %s", k.Line, join(path, k.Value)))
				continue
			}
			walk(v, ft, join(path, k.Value), errs, depth+1)
		}
		return
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, e := range n.Content {
			walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs, depth+1)
		}
		return
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := k.Decode(reflect.New(t.Key()).Interface()); err != nil {
				*errs = append(*errs, &FieldError{Field: join(path, k.Value), Line: k.Line,
					Msg: fmt.Sprintf("want %s as the key, got %s", want(t.Key()), got(k))})
				continue
			}
			walk(v, t.Elem(), join(path, k.Value), errs, depth+1)
		}
		return
	}
	// A leaf, or a node of the wrong shape: decode it alone to see.
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		msg := fmt.Sprintf("want %s, got %s", want(t), got(n))
		if want(t) == "" {
			// A type with its own UnmarshalYAML says what it wants.
			msg = lineRe.ReplaceAllString(err.Error(), "")
		}
		if path == "" {
			*errs = append(*errs, fmt.Errorf("line %d: %s", n.Line, msg))
			return
		}
		*errs = append(*errs, &FieldError{Field: path, Line: n.Line, Msg: msg})
	}
}

var lineRe = regexp.MustCompile(`^(yaml: )?line \d+: `)

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isTextUnmarshaler(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// want says what would parse as a t, for an error message; "" for types
// with their own UnmarshalYAML, whose errors say it themselves.
func want(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "a duration such as 3s"
	case reflect.TypeFor[ByteSize]():
		return "a size such as 64mb"
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) && t.Kind() != reflect.Struct {
		return ""
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Int8, reflect.Int16, reflect.Int32:
		b := t.Bits() - 1
		return fmt.Sprintf("an integer %d..%d", -(int64(1) << b), int64(1)<<b-1)
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return "an integer >= 0"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return fmt.Sprintf("an integer 0..%d", uint64(1)<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a mapping"
	case reflect.Struct:
		if isTextUnmarshaler(t) {
			return "a " + t.String()
		}
		return "a mapping of keys"
	}
	return "a " + t.String()
}

// got describes a node for an error message: a scalar's text, else its shape.
func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	v := n.Value
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	if v == "" || strings.TrimSpace(v) != v || strings.ContainsAny(v, "\n\"") {
		return strconv.Quote(v)
	}
	return v
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

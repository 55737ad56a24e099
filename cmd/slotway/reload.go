package main

// Reloading the config file on SIGHUP or POST /api/v1/reload: the file is
// read and validated as at start, compared key by key with what runs, and
// the keys that can change without a restart are handed to the components;
// a changed key that cannot is logged as a warning and left as it runs.

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/internal/logging"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
	"github.com/slotway/slotway/stats"
)

// reloader re-reads path and applies it to inst.
type reloader struct {
	path     string
	inst     *instance
	log      *slog.Logger
	level    *slog.LevelVar
	levelFor func(logging.Config) slog.Level // -log-level if given, else log.level

	mu      sync.Mutex // one reload at a time
	running fileConfig // the config in effect
}

func newReloader(path string, cfg fileConfig, inst *instance, log *slog.Logger, level *slog.LevelVar, levelFor func(logging.Config) slog.Level) *reloader {
	return &reloader{path: path, inst: inst, log: log, level: level, levelFor: levelFor, running: cfg}
}

// watch reloads on every signal from hup until ctx ends. The returned
// function stops it and waits for it.
func (r *reloader) watch(ctx context.Context, hup <-chan os.Signal) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.log.Info("SIGHUP: reloading the config file", "path", r.path)
				_, _ = r.reload()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Reload serves POST /api/v1/reload (stats.Reloader).
func (r *reloader) Reload() (stats.ReloadResult, error) {
	r.log.Info("reload requested through the API", "path", r.path)
	return r.reload()
}

// reload reads and validates the file; an invalid file changes nothing.
func (r *reloader) reload() (stats.ReloadResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := loadConfig(r.path)
	if err != nil {
		r.log.Error("config reload failed; nothing changed", "err", err)
		return stats.ReloadResult{}, err
	}
	merged := r.running
	applied, ignored := diffConfig(&merged, &next, r.reloadable)
	res := stats.ReloadResult{Applied: applied, Ignored: ignored}
	if res.Applied == nil {
		res.Applied = []string{}
	}
	if res.Ignored == nil {
		res.Ignored = []string{}
	}
	// The new values with the ignored keys kept as they run: a
	// combination the file itself does not hold, so it is checked again.
	if err := merged.Validate(); err != nil {
		err = errors.New(r.path + ": with the keys that need a restart kept at their running values: " + err.Error())
		r.log.Error("config reload failed; nothing changed", "err", err)
		return stats.ReloadResult{}, err
	}
	for _, k := range ignored {
		r.log.Warn("config key changed but needs a restart; keeping the running value", "key", k)
	}
	r.apply(merged, applied)
	r.running = merged
	r.log.Info("config reloaded", "applied", strings.Join(applied, ","), "ignored", strings.Join(ignored, ","))
	return res, nil
}

// apply hands each component its section when one of its keys changed.
// The merged file is valid, so a component refusing it is a bug: it is
// logged, and that component keeps its old values.
func (r *reloader) apply(cfg fileConfig, applied []string) {
	changed := func(section string) bool {
		return slices.ContainsFunc(applied, func(k string) bool { return strings.HasPrefix(k, section+".") })
	}
	var errs []error
	if changed("proxy") {
		errs = append(errs, r.inst.proxy.Reload(cfg.Proxy))
	}
	if changed("scaler") {
		errs = append(errs, r.inst.scaler.Reload(*cfg.Scaler))
	}
	if changed("ha") {
		errs = append(errs, r.inst.group.Reload(*cfg.HA))
	}
	if changed("log") {
		r.level.Set(r.levelFor(cfg.Log))
	}
	if err := errors.Join(errs...); err != nil {
		r.log.Error("a component refused its reloaded config", "err", err)
	}
}

// reloadable reports whether key can change without a restart on this
// instance (a component it does not run cannot take its keys).
func (r *reloader) reloadable(key string) bool {
	section, rest, _ := strings.Cut(key, ".")
	switch section {
	case "proxy":
		return r.inst.proxy != nil && matchKey(proxy.ReloadableKeys, rest)
	case "scaler":
		return r.inst.scaler != nil && matchKey(scaler.ReloadableKeys, rest)
	case "ha":
		return r.inst.group != nil && matchKey(ha.ReloadableKeys, rest)
	case "log":
		return rest == "level"
	}
	return false
}

// matchKey: key is one of keys, or under one that ends in ".".
func matchKey(keys []string, key string) bool {
	for _, k := range keys {
		if key == k || (strings.HasSuffix(k, ".") && strings.HasPrefix(key, k)) {
			return true
		}
	}
	return false
}

// diffConfig compares running and next (pointers to the same struct type)
// by yaml path and returns the changed keys: a struct is walked field by
// field, anything else (a value, a list, a map, a section that appears or
// goes) is one key. Each changed key that reloadable accepts is copied
// from next into running.
func diffConfig(running, next any, reloadable func(key string) bool) (applied, ignored []string) {
	var walk func(path string, cur, nxt reflect.Value)
	leaf := func(path string, cur, nxt reflect.Value) {
		if equalValues(cur, nxt) {
			return
		}
		if reloadable(path) {
			cur.Set(nxt)
			applied = append(applied, path)
		} else {
			ignored = append(ignored, path)
		}
	}
	walk = func(path string, cur, nxt reflect.Value) {
		switch cur.Kind() {
		case reflect.Pointer:
			if cur.IsNil() || nxt.IsNil() {
				leaf(path, cur, nxt)
				return
			}
			// Copy before walking: the running value's pointee may be
			// shared with a component.
			c := reflect.New(cur.Type().Elem())
			c.Elem().Set(cur.Elem())
			cur.Set(c)
			walk(path, cur.Elem(), nxt.Elem())
		case reflect.Struct:
			t := cur.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "-" {
					continue
				}
				p := path
				if !strings.Contains(opts, "inline") {
					if name == "" {
						name = strings.ToLower(f.Name)
					}
					p = joinKey(path, name)
				}
				walk(p, cur.Field(i), nxt.Field(i))
			}
		default:
			leaf(path, cur, nxt)
		}
	}
	walk("", reflect.ValueOf(running).Elem(), reflect.ValueOf(next).Elem())
	return applied, ignored
}

// equalValues is reflect.DeepEqual, except that an empty list or map
// equals a missing one (users: [] and no users: mean the same).
func equalValues(a, b reflect.Value) bool {
	if k := a.Kind(); (k == reflect.Slice || k == reflect.Map) && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

package main

import "github.com/slotway/slotway/internal/fileconfig"

// fileConfig is the whole YAML file (internal/fileconfig, shared with the
// deployment tests).
type fileConfig = fileconfig.File

func defaultConfig() fileConfig { return fileconfig.Default() }

func loadConfig(path string) (fileConfig, error) { return fileconfig.Load(path) }

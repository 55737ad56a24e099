package main

import (
	"errors"
	"flag"
)

// flagError is a bad command line the flag package has already printed,
// with the command's usage: runMain exits 2 without printing it again.
type flagError struct{ error }

// parseFlags parses args with fs (made with flag.ContinueOnError). -h is
// flag.ErrHelp (exit 0); a bad flag is a usage error (exit 2), as every
// command's help says.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return flagError{err}
}

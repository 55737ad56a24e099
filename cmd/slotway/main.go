// Command slotway runs the Slotway proxy, its demo and its tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/slotway/slotway/proxy"
)

const usage = `Slotway makes a Redis Cluster look like one Redis server.

Usage:
  slotway run -config FILE     run an instance (also -c FILE); with -check,
                               check the file and exit 0 or 1
  slotway demo                 start a local Redis Cluster with Slotway in front
  slotway cluster -config FILE status | rebalance | scale N | drain HOST:PORT | fix
                               run a scaling operation on the group's leader
                               and wait for it
  slotway cluster create [-replicas R] HOST:PORT...
                               form a new Redis Cluster from empty nodes
  slotway check -addr HOST:PORT
                               write and read back keys, report lost and stale
                               writes (exit 1 if any; errors alone do not fail)
  slotway bench -endpoint HOST:PORT
                               measure SET/GET throughput and latency by value
                               size; write results.csv, .json and .svg
  slotway version              print the version

Run 'slotway COMMAND -h' for a command's flags. Exit status: 0 on
success, 1 on failure, 2 for a bad command line.
`

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "cluster":
		err = cmdCluster(ctx, args[1:], stdout, stderr)
	case "check":
		err = cmdCheck(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "slotway %s\n", proxy.Version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "slotway: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var fe flagError
	if errors.As(err, &fe) {
		return 2 // the flag package printed it, with the usage
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "slotway %s: %v\n", args[0], err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "slotway %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	// At once: SIGHUP's default action is to end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var path string
	fs.StringVar(&path, "config", "", "config file (YAML)")
	fs.StringVar(&path, "c", "", "config file (shorthand for -config)")
	logf := addLogFlags(fs, "info")
	check := fs.Bool("check", false, "check the config file and exit (0 good, 1 not): its values, the files it names, the listen addresses; starts and dials nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if path == "" {
		return usageError{errors.New("-config FILE is required")}
	}
	if err := logf.check(fs); err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	// The same checks as -check, before anything starts or dials.
	if err := checkConfig(path, cfg); err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stderr, "config %s: ok\n", path)
		return nil
	}
	logLevel := new(slog.LevelVar)
	logLevel.Set(logf.levelFor(cfg.Log))
	log := logf.logger(stderr, logLevel, cfg.Log.Format)
	// The reloader drives the instance, and the instance's stats server
	// serves it: it learns its instance once that is built.
	rl := newReloader(path, cfg, nil, log, logLevel, logf.levelFor)
	inst, err := newInstance(cfg, log, rl)
	if err != nil {
		return err
	}
	rl.inst = inst
	if inst.proxy != nil {
		log.Info("slotway started", "version", proxy.Version, "listen", inst.proxy.Addr().String(),
			"stats", inst.stats.Addr().String())
	} else {
		log.Info("slotway started as a witness (votes, runs no proxy)", "version", proxy.Version,
			"stats", inst.stats.Addr().String())
	}
	stopReloads := rl.watch(ctx, hup)
	err = inst.run(ctx)
	stopReloads()
	log.Info("slotway stopped")
	return err
}

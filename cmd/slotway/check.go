package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/check"
)

const checkUsage = `Usage: slotway check [-addr HOST:PORT | -config FILE] [flags]

Writes SET key N (N counting up per key, each key written by one connection
only) at -rate writes per second, reads a key back after each write, and
when it ends (-duration, or Ctrl-C) reads back every key it wrote. Prints
the result to stdout; the first line is
  written N, acked A, lost L, stale S, errors E
  lost    acknowledged writes gone at the end (key missing or older value)
  stale   reads during the run that returned an older value than acknowledged
  errors  failed or timed-out commands; their writes may or may not have
          landed, both are accepted
then the error kinds, the longest error streak and the latencies.

Exit status: 0 if lost and stale are 0 (errors alone, e.g. during a
failover, do not fail the check); 1 if not, or if the endpoint does not
answer PING at the start; 2 for bad flags. The keys (-prefix) are left in
place. -password falls back to $REDISCLI_AUTH.

Flags:
`

// cmdCheck runs the consistency checker against an endpoint.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, auth := newToolFlags("check", checkUsage, stderr)
	addr := fs.String("addr", "", "endpoint host:port (a Slotway or a Redis)")
	var path string
	fs.StringVar(&path, "config", "", "use proxy.listen of this Slotway config file instead of -addr")
	fs.StringVar(&path, "c", "", "shorthand for -config")
	rate := fs.Int("rate", check.DefaultRate, "writes per second, over all connections")
	workers := fs.Int("workers", check.DefaultWorkers, "concurrent connections")
	keys := fs.Int("keys", check.DefaultKeys, "number of keys, written round robin")
	duration := fs.Duration("duration", 0, "how long to write (0: until Ctrl-C)")
	prefix := fs.String("prefix", check.DefaultPrefix, "key prefix")
	opTimeout := fs.Duration("op-timeout", check.DefaultOpTimeout, "timeout of one command, connecting included")
	verbose := fs.Bool("v", false, "print progress every second to stderr")
	if err := auth.parse(fs, args); err != nil {
		return err
	}
	switch {
	case *addr != "" && path != "":
		return usageError{errors.New("give -addr or -config, not both")}
	case *addr == "" && path == "":
		return usageError{errors.New("-addr HOST:PORT or -config FILE is required")}
	case path != "":
		a, err := checkAddrFromConfig(path)
		if err != nil {
			return err
		}
		*addr = a
	}
	if *rate <= 0 || *workers <= 0 || *keys <= 0 || *duration < 0 || *opTimeout <= 0 || *prefix == "" {
		return usageError{errors.New("-rate, -workers, -keys and -op-timeout must be positive, -duration not negative, -prefix not empty")}
	}
	if *workers > *keys {
		return usageError{fmt.Errorf("-workers %d exceeds -keys %d: each connection owns keys", *workers, *keys)}
	}
	cfg := check.Config{
		Addr: *addr, Rate: *rate, Workers: *workers, Keys: *keys, Prefix: *prefix,
		Duration: *duration, Username: auth.user, Password: auth.password, OpTimeout: *opTimeout,
	}
	if *verbose {
		cfg.Progress = func(p check.Progress) {
			fmt.Fprintf(stderr, "elapsed %v, written %d, errors %d\n", p.Elapsed.Round(time.Second), p.Written, p.Errors)
		}
	}
	// go-redis logs every failed dial; the result counts them instead.
	redis.SetLogger(quietLogger{})
	res, err := check.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, res)
	if !res.OK() {
		return fmt.Errorf("inconsistent: %d acknowledged writes lost, %d stale reads", res.Lost, res.Stale)
	}
	return nil
}

// checkAddrFromConfig returns the address to dial for a config file's
// proxy.listen: a wildcard host becomes loopback.
func checkAddrFromConfig(path string) (string, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return "", err
	}
	if cfg.WitnessOnly() {
		return "", fmt.Errorf("%s: a witness runs no proxy", path)
	}
	if cfg.Proxy.TLS.CertFile != "" {
		return "", fmt.Errorf("%s: the proxy listens with TLS; slotway check speaks plain RESP only", path)
	}
	host, port, err := net.SplitHostPort(cfg.Proxy.Listen)
	if err != nil {
		return "", fmt.Errorf("%s: proxy.listen: %w", path, err)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.To4() != nil && ip.IsUnspecified()):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// authFlags are the -user and -password flags of the load tools (check,
// bench); -password falls back to $REDISCLI_AUTH, as redis-cli's does.
type authFlags struct{ user, password string }

// newToolFlags makes a tool's flag set with its usage text and AUTH flags.
func newToolFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *authFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	a := &authFlags{}
	fs.StringVar(&a.user, "user", "", "ACL user (AUTH user password)")
	fs.StringVar(&a.password, "password", "", "password (AUTH); default $REDISCLI_AUTH")
	return fs, a
}

// parse parses args (flags only) and fills in the password.
func (a *authFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if a.password == "" {
		a.password = os.Getenv("REDISCLI_AUTH")
	}
	return nil
}
